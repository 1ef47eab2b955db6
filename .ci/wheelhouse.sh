#!/usr/bin/env bash
# Build the image's wheelhouse on the host: $BOTFLEET_BUILD_DIR/context/deps (every dependency's wheel,
# rebuilt only when pyproject.toml or pip's constraints change) and context/app (botfleet's own wheel).
# .ci/build-image.sh runs it; it needs no Docker and works from a fresh checkout.
#
# Environment: PYTHON (default: .venv/bin/python after `make install`; without one, a venv of the
# build's own made with python3 under $BOTFLEET_BUILD_DIR/venv), BOTFLEET_BUILD_DIR (.botfleet/build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BOTFLEET_BUILD_DIR:-$ROOT/.botfleet/build}

log() { printf '[build-image] %s\n' "$*" >&2; }

mkdir -p "$BUILD"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON=$ROOT/.venv/bin/python
    else
        # No `make install` yet: `pip wheel` runs in a venv of the build's own (the system python3
        # may lack pip, and its pip may be too old for build isolation).
        PYTHON=$BUILD/venv/bin/python
        if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
            command -v python3 >/dev/null || { log "no python3: install Python 3.11+ or set PYTHON"; exit 1; }
            log "no .venv: making $BUILD/venv for pip wheel (python3 -m venv)"
            rm -rf "$BUILD/venv"
            python3 -m venv "$BUILD/venv" >"$BUILD/venv.log" 2>&1 \
                || { tail -5 "$BUILD/venv.log" >&2; log "python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
        fi
    fi
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || { log "$PYTHON has no pip"; exit 1; }

cd "$ROOT"
context="$BUILD/context"
mkdir -p "$context/deps" "$context/app"
deps_hash=$(cat pyproject.toml /etc/xdg/pip/constraints.txt 2>/dev/null | sha256sum | cut -c1-64)
if [ "$(cat "$context/deps/.stamp" 2>/dev/null)" != "$deps_hash" ]; then
    log "pip wheel: dependencies"
    rm -rf "$context/deps" "$BUILD/all"
    mkdir -p "$context/deps"
    # The image runs Debian's python3 (3.11.2); markers like python_full_version < "3.11.3"
    # (redis -> async-timeout) select wheels the host interpreter would skip, so add them here.
    "$PYTHON" -m pip wheel --quiet --wheel-dir "$BUILD/all" "$ROOT" "async-timeout>=4.0.3" \
        >"$BUILD/pip-deps.log" 2>&1 || { tail -20 "$BUILD/pip-deps.log" >&2; exit 1; }
    find "$BUILD/all" -name 'botfleet-*.whl' -delete
    mv "$BUILD/all"/*.whl "$context/deps/"
    rm -rf "$BUILD/all"
    echo "$deps_hash" >"$context/deps/.stamp"
fi
log "pip wheel: botfleet"
rm -rf "$context/app" && mkdir -p "$context/app"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$context/app" "$ROOT" >"$BUILD/pip-app.log" 2>&1 \
    || { tail -20 "$BUILD/pip-app.log" >&2; exit 1; }
rm -rf "$ROOT/build"
