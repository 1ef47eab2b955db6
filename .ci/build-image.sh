#!/usr/bin/env bash
# Build the one botfleet image without any network access inside the build.
#
#   .ci/build-image.sh            # base image (if missing) + wheelhouse + botfleet:latest
#
# 1. The base image (default botfleet-base:bookworm) is created once, locally: debootstrap a Debian
#    bookworm rootfs with python3 and `docker import` it, because no registry can be reached.
# 2. The wheelhouse is built on the host with `pip wheel` (.ci/wheelhouse.sh): dependencies once per
#    pyproject.toml, the project's own wheel whenever its sources change.
# 3. `docker build` installs from the wheelhouse with `pip --no-index` (pip compiles every module's
#    bytecode into the image: containers never compile at start, the root file system is read-only).
# 4. One warm-up container of the new image (`python -m tenant_bot --warm-up`), see step 5.
# Re-running with nothing changed is a no-op (the image carries the hash of its sources as a label).
#
# Environment: BOTFLEET_IMAGE (botfleet:latest), BOTFLEET_BASE_IMAGE (botfleet-base:bookworm),
# PYTHON (.venv/bin/python; with no .venv, a venv of the build's own: .ci/wheelhouse.sh),
# DEBIAN_MIRROR (http://deb.debian.org/debian),
# BOTFLEET_BUILD_DIR (.botfleet/build), FORCE=1 to rebuild the image even if it is up to date.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${BOTFLEET_IMAGE:-botfleet:latest}
BASE_IMAGE=${BOTFLEET_BASE_IMAGE:-botfleet-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BUILD=${BOTFLEET_BUILD_DIR:-$ROOT/.botfleet/build}

log() { printf '[build-image] %s\n' "$*" >&2; }

docker info >/dev/null 2>&1 || { log "no Docker engine answers (start dockerd first)"; exit 1; }
mkdir -p "$BUILD"

# --- 1. the base image -------------------------------------------------------------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
    rootfs="$BUILD/rootfs"
    rm -rf "$rootfs"
    log "debootstrap bookworm -> $rootfs (once)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tzdata \
        bookworm "$rootfs" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1 \
        || { tail -20 "$BUILD/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
        "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
    log "docker import -> $BASE_IMAGE"
    tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
fi

# --- 2. is the image already built from these sources? ------------------------------------------
cd "$ROOT"
source_hash=$(
    { git ls-files -co --exclude-standard -- pyproject.toml Dockerfile cli control_plane deploy_worker \
        fleet migrations sales_bot sandbox schemas templates tenant_bot | LC_ALL=C sort \
        | while IFS= read -r f; do [ -f "$f" ] && printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; done
      docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } | sha256sum | cut -c1-64
)
current=$(docker image inspect -f '{{index .Config.Labels "botfleet.source-hash"}}' "$IMAGE" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$source_hash" ]; then
    log "$IMAGE is up to date"
    exit 0
fi

# --- 3. the wheelhouse -------------------------------------------------------------------------
context="$BUILD/context"
BOTFLEET_BUILD_DIR=$BUILD bash "$ROOT/.ci/wheelhouse.sh"

# --- 4. the image ------------------------------------------------------------------------------
log "docker build -> $IMAGE"
DOCKER_BUILDKIT=0 docker build --quiet --network none -f "$ROOT/Dockerfile" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "botfleet.source-hash=$source_hash" \
    -t "$IMAGE" "$context" >"$BUILD/docker-build.log" 2>&1 || { tail -30 "$BUILD/docker-build.log" >&2; exit 1; }
docker image prune --force --filter "label=botfleet.source-hash" >/dev/null 2>&1 || true
log "built $IMAGE"

# --- 5. warm it: the first tenant containers then start on a warm page cache ----------------------
# (deploy_worker/runtimes/docker.py, "Warm-up"; the worker warms it again before its first tenant).
# It is also a smoke test: every module a tenant bot imports, its templates, no network.
started=$SECONDS
docker run --rm --network none --read-only --tmpfs /tmp --cap-drop ALL "$IMAGE" \
    python -m tenant_bot --warm-up >"$BUILD/warm-up.log" 2>&1 \
    || { tail -20 "$BUILD/warm-up.log" >&2; log "$IMAGE: its warm-up failed"; exit 1; }
log "warmed $IMAGE in $((SECONDS - started))s"
