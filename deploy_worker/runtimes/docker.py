"""The ``docker`` runtime: one container per tenant bot through the Docker Engine API (docker SDK).

The SDK is blocking, so every call runs in a worker thread (``asyncio.to_thread``). Containers carry
the labels ``botfleet.tenant``, ``botfleet.namespace`` and ``botfleet.spec-hash``, memory and CPU
limits, a restart policy, a capped json-file log, no capabilities and a read-only root file system.

Secrets never enter a container's environment or command line: the container gets
``BOTFLEET_TENANT_<NAME>_FILE`` variables, and the files are written into a private anonymous volume
at :data:`~deploy_worker.spec.SECRETS_DIR` (``put_archive`` into the created container, before it
starts), owned by the image's user with mode 0400, in a root-owned folder. A volume rather than a
tmpfs: a tmpfs is empty at every start and the engine cannot copy into one, while the volume keeps the
files across restarts of the container (its restart policy) and is deleted with it. At rest they sit in
``/var/lib/docker/volumes`` (root only), i.e. with the engine, which can read any container anyway.

Network: tenants run on a named bridge network (default ``botfleet-tenants``), never the host's. A
network the runtime creates has inter-container traffic off (``enable_icc=false``): a tenant reaches
no other container on it, only the outside world (Telegram) and the host through the bridge's
gateway. PostgreSQL, Redis or a Bot API server the tenant would reach on a loopback address
(``127.0.0.1`` - a host-run PostgreSQL, the embedded servers of ``botfleet up``, the sandbox) are
unreachable from a container, so the runtime relays exactly those ports: it listens on the network's
gateway address at the same port numbers (:class:`LoopbackRelay`, in the worker's process) and the
container's URLs name ``host.docker.internal``, mapped to that gateway. Anything else listening on
the host's wildcard or gateway addresses is reachable by tenants too: run PostgreSQL and Redis in
compose (the ``tenants`` network), or firewall the host (``iptables -I INPUT -i <bridge> ...``).

Warm-up: the first containers of a new image (after a build or a ``fleet upgrade``) used to take
15-26 s to report ready instead of 3-5: each read the image's ~17,000 files from disk while several
started at once on a cold page cache. Before the first tenant container of an image (by image id,
so a rebuilt ``botfleet:latest`` counts as new) the runtime runs one throwaway container of it,
``python -m tenant_bot --warm-up`` (no network, read-only, no capabilities): it imports every module
a bot imports and compiles the templates, so the files are in the page cache and the engine has
mounted the image once; concurrent first ensures wait for that one warm-up instead of all reading the
disk at once. The worker warms ``BOTFLEET_TENANT_IMAGE`` at start (:meth:`DockerRuntime.warm_up`),
``.ci/build-image.sh`` right after a build and ``botfleet fleet upgrade`` before its first redeploy.
A warm-up that fails (an image without ``tenant_bot``) is logged and counted, never fatal: the
tenant's own container then shows the real error.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import ipaddress
import json
import logging
import shlex
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from deploy_worker.errors import RuntimeBackendError
from deploy_worker.runtimes.base import EnsureResult, InstanceState, InstanceStatus
from deploy_worker.spec import (
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_SPEC_HASH,
    LABEL_TENANT,
    MANAGED_BY,
    SECRETS_DIR,
    TENANT_PIDS_LIMIT,
    RuntimeSpec,
    file_env,
    instance_name,
    secret_file_name,
)
from schemas.capacity import BotUsage
from schemas.runtime import HEARTBEAT_TTL_SECONDS, env_name

log = logging.getLogger(__name__)
T = TypeVar("T")
LABEL_STOP_TIMEOUT = "botfleet.stop-timeout"  # seconds between SIGTERM and SIGKILL on stop
LABEL_RELAY = "botfleet.relay"  # the loopback ports relayed for the container (JSON)
LABEL_ROLE = "botfleet.role"  # what a container that is no tenant's is for (``warm-up``)
WARM_UP_COMMAND = ("python", "-m", "tenant_bot", "--warm-up")
WARM_UP_TIMEOUT_S = 180.0  # a loaded host importing aiogram from a cold disk: well under this
WARM_UP_MEMORY_BYTES = 512 * 2**20
HOST_ALIAS = "host.docker.internal"  # the host, as tenant containers on a bridge see it
# Variables whose URL may name a loopback host the container cannot reach as such.
ROUTED_VARS = (
    "BOTFLEET_TENANT_DATABASE_URL",
    "BOTFLEET_TENANT_REDIS_URL",
    "BOTFLEET_TENANT_TELEGRAM_API_BASE",
)
_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379}
_DEFAULT_PORTS |= {"http": 80, "https": 443}
_NS = 1_000_000_000  # Docker counts health-check durations in nanoseconds
# The bot touches it at each healthy heartbeat (tenant_bot.heartbeat); on the container's /tmp tmpfs,
# so it is gone at every start. Given to the bot outside the spec, like the health check itself.
HEARTBEAT_FILE = "/tmp/botfleet-heartbeat"  # noqa: S108 - the container's private tmpfs
HEARTBEAT_FILE_VAR = env_name("heartbeat_file")
HEALTH_INTERVAL_S = 30.0

_STATES = {
    "running": InstanceState.RUNNING,
    "restarting": InstanceState.RESTARTING,
    "created": InstanceState.STOPPED,
    "exited": InstanceState.STOPPED,
    "paused": InstanceState.STOPPED,
    "dead": InstanceState.STOPPED,
    "removing": InstanceState.STOPPED,
}


def parse_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as aware datetimes; None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    head, _, rest = value.partition(".")
    zone = "+00:00"
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits) :]
        zone = "+00:00" if tail in ("", "Z") else tail
        head = f"{head}.{digits[:6]}"
    elif head.endswith("Z"):
        head = head[:-1]
    return datetime.fromisoformat(head + zone)


class DockerRuntime:
    """Tenant bots as Docker containers."""

    kind = "docker"

    def __init__(
        self,
        *,
        client: Any,
        namespace: str,
        warm_images: Iterable[str] = (),
        health_interval_s: float = HEALTH_INTERVAL_S,
    ) -> None:
        """``client`` is a ``docker.DockerClient`` (e.g. ``docker.from_env()``); ``warm_images``:
        what :meth:`warm_up` warms when the worker starts (its tenant image);
        ``health_interval_s``: how often the engine runs a container's health check (tests
        shorten it)."""
        self._client = client
        self._health_interval_ns = int(health_interval_s * _NS)
        self.namespace = namespace
        self._relay = LoopbackRelay()
        self._network_lock = threading.Lock()  # ensure() runs in threads; one creation at a time
        self._warm_images = tuple(warm_images)
        self._warm: dict[str, asyncio.Task[float | None]] = {}  # image id -> its one warm-up
        self.warm_ups = 0  # warm-up containers run to completion (exit 0)
        self.warm_up_failures = 0
        self.last_warm_up_error: str | None = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import docker.errors

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.DockerException as exc:
            raise RuntimeBackendError(f"docker: {_explain(exc)}") from exc

    # -- the interface ---------------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Warm the configured tenant images (the worker calls this once, at start)."""
        for image in self._warm_images:
            await self.warm_image(image)

    async def warm_image(self, image: str) -> float | None:
        """Run the warm-up container of ``image`` once per image id in this process; concurrent
        callers share it. Seconds it took (None: failed, or the image is not on this engine)."""
        try:
            image_id = await self._call(self._image_id, image)
        except RuntimeBackendError as exc:
            self.warm_up_failures += 1
            self.last_warm_up_error = f"image warm-up skipped: {exc}"
            log.warning("image warm-up skipped", extra={"image": image, "error": str(exc)})
            return None
        task = self._warm.get(image_id)
        if task is None:
            task = asyncio.create_task(self._run_warm_up(image, image_id))
            self._warm[image_id] = task
        return await asyncio.shield(task)

    async def _run_warm_up(self, image: str, image_id: str) -> float | None:
        started = time.monotonic()
        try:
            await self._call(self._warm_up_sync, image_id)
        except RuntimeBackendError as exc:
            self.warm_up_failures += 1
            self.last_warm_up_error = f"the warm-up of {image} failed: {exc}"
            log.warning("image warm-up failed", extra={"image": image, "error": str(exc)})
            return None
        seconds = round(time.monotonic() - started, 2)
        self.warm_ups += 1
        log.info("image warmed", extra={"image": image, "seconds": seconds})
        return seconds

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        await self.warm_image(spec.image)  # the first container of an image: once, and shared
        route = None
        if spec.network not in ("host", "none"):
            network_id, gateway = await self._call(self._ensure_network, spec.network)
            env, targets = route_loopback(spec.env)
            if targets:
                if gateway is None:
                    raise RuntimeBackendError(
                        f"docker: network {spec.network} has no gateway to relay "
                        f"{', '.join(f'{h}:{p}' for h, p in sorted(targets))} through"
                    )
                await self._relay.serve(gateway, targets)
            route = _Route(env=env, gateway=gateway, targets=sorted(targets), network=network_id)
        return await self._call(self._ensure_sync, spec, recreate, route)

    async def stop(self, slug: str) -> bool:
        return await self._call(self._stop_sync, slug)

    async def remove(self, slug: str) -> bool:
        return await self._call(self._remove_sync, slug)

    async def status(self, slug: str) -> InstanceStatus:
        container = await self._call(self._get, slug)
        if container is None:
            return InstanceStatus.missing(slug)
        await self._restore_relays([container])
        return self._status_of(container)

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        container = await self._call(self._get, slug)
        if container is None:
            return ""
        raw = await self._call(container.logs, tail=tail, stdout=True, stderr=True)
        return bytes(raw).decode("utf-8", errors="replace")

    async def list_by_label(self, labels: dict[str, str] | None = None) -> list[InstanceStatus]:
        wanted = {LABEL_NAMESPACE: self.namespace, **(labels or {})}
        filters = {"label": [f"{key}={value}" for key, value in wanted.items()]}
        containers = await self._call(self._client.containers.list, all=True, filters=filters)
        mine = [c for c in containers if c.labels.get(LABEL_TENANT)]
        await self._restore_relays(mine)
        return [self._status_of(c) for c in mine]

    async def usage(self) -> list[BotUsage]:
        """Each running bot's memory from the engine's stats API (one-shot reads, a few threads at
        once), on the engine's host: RSS is the container's usage less its inactive page cache (what
        ``docker stats`` shows); USS is unknown (None)."""
        filters = {"label": [f"{LABEL_NAMESPACE}={self.namespace}"], "status": "running"}
        containers = await self._call(self._client.containers.list, filters=filters)
        mine = [c for c in containers if c.labels.get(LABEL_TENANT)]
        if not mine:
            return []
        host = await self._call(engine_host, self._client)
        limit = asyncio.Semaphore(STATS_CONCURRENCY)

        async def one(container: Any) -> BotUsage:
            async with limit:
                try:
                    memory = await self._call(container_memory, self._client, container.id)
                except RuntimeBackendError:  # gone since it was listed
                    memory = None
            return BotUsage(slug=container.labels[LABEL_TENANT], host=host, rss_bytes=memory)

        return list(await asyncio.gather(*(one(c) for c in mine)))

    async def close(self) -> None:
        await self._relay.close()
        await asyncio.to_thread(self._client.close)

    async def _restore_relays(self, containers: Iterable[Any]) -> None:
        """Relay the loopback ports bots started by an earlier worker still use (their label)."""
        for container in containers:
            raw = container.labels.get(LABEL_RELAY)
            if not raw:
                continue
            try:
                relay = json.loads(raw)
                targets = {(str(host), int(port)) for host, port in relay["targets"]}
                await self._relay.serve(str(relay["gateway"]), targets)
            except (ValueError, KeyError, TypeError):
                log.warning("bad relay label", extra={"tenant": container.labels[LABEL_TENANT]})

    # -- blocking helpers (run in threads) -------------------------------------------------------

    def _get(self, slug: str) -> Any | None:
        import docker.errors

        try:
            container = self._client.containers.get(instance_name(self.namespace, slug))
        except docker.errors.NotFound:
            return None
        if container.labels.get(LABEL_NAMESPACE) != self.namespace:
            return None
        return container

    def _ensure_sync(self, spec: RuntimeSpec, recreate: bool, route: _Route | None) -> EnsureResult:
        import docker.errors

        for _ in range(3):
            container = self._get(spec.slug)
            same = container is not None and container.labels.get(LABEL_SPEC_HASH) == spec.spec_hash
            if container is not None and same and not recreate:
                if container.status in ("running", "restarting"):
                    return EnsureResult(self._status_of(container), changed=False)
                container.start()
                container.reload()
                return EnsureResult(self._status_of(container), changed=True)
            if container is not None:
                log.info("recreating container", extra={"tenant": spec.slug})
                container.remove(force=True, v=True)
            try:
                container = self._client.containers.create(**self._create_args(spec, route))
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # a concurrent create of the same name: look again
                    recreate = False
                    continue
                raise
            try:
                self._put_secrets(container, spec, route)
            except Exception:
                container.remove(force=True, v=True)  # never leave a bot without its secrets
                raise
            container.start()
            container.reload()
            log.info("container started", extra={"tenant": spec.slug, "image": spec.image})
            return EnsureResult(self._status_of(container), changed=True)
        raise RuntimeBackendError(f"docker: container {spec.name} keeps changing under us")

    def _create_args(self, spec: RuntimeSpec, route: _Route | None = None) -> dict[str, Any]:
        from docker.types import Mount

        env = route.env if route is not None else dict(spec.env)
        public = {k: v for k, v in env.items() if k in spec.public_env}
        secret = {k: v for k, v in env.items() if k in spec.secret_env}

        args: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command),
            "name": spec.name,
            # No secret here: only their *_FILE paths (see the module docstring).
            "environment": {**public, **file_env(secret), HEARTBEAT_FILE_VAR: HEARTBEAT_FILE},
            "mounts": [Mount(target=SECRETS_DIR, source=None, type="volume")],
            "labels": {**spec.labels, LABEL_STOP_TIMEOUT: str(int(spec.stop_timeout))},
            "detach": True,
            "mem_limit": spec.memory_bytes,
            "memswap_limit": spec.memory_bytes,
            "nano_cpus": spec.nano_cpus,
            "pids_limit": TENANT_PIDS_LIMIT,
            "restart_policy": {"Name": spec.restart_policy}
            if spec.restart_policy != "on-failure"
            else {"Name": "on-failure", "MaximumRetryCount": 0},
            "stop_signal": "SIGTERM",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},  # noqa: S108 - a private tmpfs
            "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
            # `docker ps` shows a bot whose loops are failing or stuck as unhealthy (its heartbeat
            # lapses too, and the reconciler redeploys it). Not part of the spec: changing the
            # check never recreates running bots. A shell test of the heartbeat file's age (see
            # health_check_command): no interpreter per check. Every 30 s: the worker's readiness
            # and the reconciler's redeploys go by the Redis heartbeat, not by this; shorter costs
            # the engine's exec (≈ 50 ms of dockerd/containerd/runc CPU each) a hundred times more
            # often, longer leaves `docker ps` at "starting" that long after each start (engines
            # before 25.0 have no start_interval).
            "healthcheck": {
                "test": ["CMD-SHELL", health_check_command(HEARTBEAT_FILE, HEARTBEAT_TTL_SECONDS)],
                "interval": self._health_interval_ns,
                "timeout": 10 * _NS,
                "retries": 3,
                "start_period": 60 * _NS,
            },
        }
        if spec.network in ("host", "none"):
            args["network_mode"] = spec.network
        else:
            # By id while a name is ambiguous (two networks of one name: see _ensure_network).
            args["network"] = route.network if route is not None and route.network else spec.network
            args["hostname"] = spec.name
            if route is not None and route.gateway:
                args["extra_hosts"] = {HOST_ALIAS: route.gateway}
            if route is not None and route.targets:
                args["labels"][LABEL_RELAY] = json.dumps(
                    {"gateway": route.gateway, "targets": route.targets}, separators=(",", ":")
                )
        return args

    def _put_secrets(self, container: Any, spec: RuntimeSpec, route: _Route | None) -> None:
        """Write the spec's secrets into the created (not yet started) container's secrets volume:
        one 0400 file each, owned by the user the image runs as."""
        uid, gid = self._image_user(spec.image)
        env = route.env if route is not None else dict(spec.env)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name in sorted(spec.secret_env):
                value = env[name]
                data = value.encode()
                info = tarfile.TarInfo(secret_file_name(name))
                info.size = len(data)
                # Owned by the bot's user: 0400. An image whose user is not numeric: readable by
                # all of its users (the bot is the container's only process).
                info.mode = 0o400 if uid is not None else 0o444
                info.uid, info.gid = uid or 0, gid or 0
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        if not container.put_archive(SECRETS_DIR, buffer.getvalue()):
            raise RuntimeBackendError(f"docker: cannot write the secrets of {spec.name}")

    def _image_id(self, image: str) -> str:
        return str(self._client.images.get(image).id)

    def _warm_up_sync(self, image_id: str) -> None:
        """Run :data:`WARM_UP_COMMAND` in a throwaway, confined container of the image; raise
        :class:`RuntimeBackendError` with its output's tail when it fails."""
        import docker.errors

        container = self._client.containers.create(
            image=image_id,
            command=list(WARM_UP_COMMAND),
            labels={
                LABEL_MANAGED: MANAGED_BY,
                LABEL_NAMESPACE: self.namespace,
                LABEL_ROLE: "warm-up",
            },
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},  # noqa: S108 - a private tmpfs
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=WARM_UP_MEMORY_BYTES,
            memswap_limit=WARM_UP_MEMORY_BYTES,
            pids_limit=TENANT_PIDS_LIMIT,
        )
        try:
            container.start()
            try:
                outcome = container.wait(timeout=WARM_UP_TIMEOUT_S)
            except Exception as exc:  # requests' ReadTimeout: the engine never answered in time
                raise RuntimeBackendError(
                    f"docker: the warm-up of {image_id[:19]} did not finish within "
                    f"{WARM_UP_TIMEOUT_S:g}s"
                ) from exc
            code = int(outcome.get("StatusCode", -1))
            if code != 0:
                tail = bytes(container.logs(tail=5)).decode("utf-8", errors="replace").strip()
                raise RuntimeBackendError(
                    f"docker: the warm-up of {image_id[:19]} exited {code}: {tail[-500:]}"
                )
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True, v=True)

    def _image_user(self, image: str) -> tuple[int | None, int | None]:
        """The numeric uid/gid the image runs as (``USER 10001:10001``); root when it sets none."""
        user = str(self._client.images.get(image).attrs.get("Config", {}).get("User") or "0")
        name, _, group = user.partition(":")
        if not name.isdigit() or (group and not group.isdigit()):
            return None, None
        return int(name), int(group or name)

    def _ensure_network(self, name: str) -> tuple[str, str | None]:
        """The tenants' network (created when missing: a bridge where containers cannot reach one
        another): how to name it to the engine, and its gateway address, the host as tenants see it.

        Docker does not refuse a second network of one name (``check_duplicate`` is ignored by
        current engines), so two workers creating it at once make two. Every worker then settles on
        the oldest, and the empty copies it made are removed; while one is left (in use), the
        network is named by its id, which is never ambiguous."""
        import docker.errors

        with self._network_lock:
            found = self._networks_named(name)
            if not found:
                try:
                    self._client.networks.create(
                        name,
                        check_duplicate=True,  # older engines honour it
                        driver="bridge",
                        options={"com.docker.network.bridge.enable_icc": "false"},
                        labels={LABEL_MANAGED: MANAGED_BY, "botfleet.role": "tenants"},
                    )
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
                found = self._networks_named(name)
            network, extras = found[0], found[1:]
            left = [extra for extra in extras if not self._remove_duplicate(extra)]
        reference = network.id if left else name
        network = self._client.networks.get(network.id)
        for config in network.attrs.get("IPAM", {}).get("Config") or []:
            gateway = config.get("Gateway")
            if gateway and ipaddress.ip_address(gateway).version == 4:
                return reference, str(gateway)
        return reference, None

    def _networks_named(self, name: str) -> list[Any]:
        """The networks called exactly ``name``, oldest first (ties broken by id)."""
        exact = [n for n in self._client.networks.list(names=[name]) if n.name == name]
        return sorted(exact, key=lambda n: (str(n.attrs.get("Created") or ""), n.id))

    def _remove_duplicate(self, network: Any) -> bool:
        """Remove a same-named copy of the tenants' network that botfleet made and nothing uses;
        False when it stays."""
        import docker.errors

        try:
            network.reload()
            if network.attrs.get("Labels", {}).get(LABEL_MANAGED) != MANAGED_BY:
                return False
            if network.attrs.get("Containers"):
                return False
            network.remove()
        except docker.errors.NotFound:
            return True  # the other worker removed it
        except docker.errors.APIError as exc:  # in use by now
            log.info(
                "duplicate network left", extra={"network": network.id[:12], "error": str(exc)}
            )
            return False
        log.warning("removed a duplicate tenants network", extra={"network": network.id[:12]})
        return True

    def _stop_sync(self, slug: str) -> bool:
        container = self._get(slug)
        if container is None or container.status not in ("running", "restarting"):
            return False
        timeout = int(container.labels.get(LABEL_STOP_TIMEOUT) or 10)
        container.stop(timeout=timeout)
        return True

    def _remove_sync(self, slug: str) -> bool:
        import docker.errors

        container = self._get(slug)
        if container is None:
            return False
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            return False
        log.info("container removed", extra={"tenant": slug})
        return True

    @staticmethod
    def _status_of(container: Any) -> InstanceStatus:
        state = container.attrs.get("State", {})
        status = state.get("Status") or container.status
        return InstanceStatus(
            slug=container.labels.get(LABEL_TENANT, ""),
            state=_STATES.get(status, InstanceState.STOPPED),
            spec_hash=container.labels.get(LABEL_SPEC_HASH),
            instance_id=container.id,
            image=container.attrs.get("Config", {}).get("Image"),
            restart_count=int(container.attrs.get("RestartCount") or 0),
            started_at=parse_time(state.get("StartedAt")),
            exit_code=state.get("ExitCode") if status != "running" else None,
            detail=f"{status} (out of memory)" if state.get("OOMKilled") else status,
        )


STATS_CONCURRENCY = 8


def engine_host(client: Any) -> str:
    """The name of the host the engine runs on (``docker info``'s ``Name``). Blocking."""
    return str(client.info().get("Name") or "docker")


def container_memory(client: Any, container_id: str) -> int | None:
    """A container's memory in bytes as ``docker stats`` counts it: usage less the inactive page
    cache (cgroup v2 ``inactive_file``, v1 ``total_inactive_file``). One-shot where the engine's API
    allows it (1.41+), so the read does not wait a second for a second sample. Blocking."""
    from docker.utils import version_gte

    one_shot = version_gte(client.api._version, "1.41")
    stats = client.api.stats(container_id, stream=False, **({"one_shot": True} if one_shot else {}))
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    detail = memory.get("stats") or {}
    inactive = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    return max(0, int(usage) - int(inactive))


def health_check_command(path: str, max_age_seconds: int) -> str:
    """The container health check (``/bin/sh -c``): exit 0 while the heartbeat file ``path`` was
    touched less than ``max_age_seconds`` ago, 1 when it is older, saying why either way. ``stat``
    and ``date`` of the image's Debian base: three short processes, no interpreter.

    No file at all is a bot not ready yet, unhealthy (it removes the file), stopping, or of an image
    from before the file (it never writes one): then the interpreter check reads the Redis heartbeat
    (``python -m tenant_bot --check-health``: healthy or not, and why), so an older image's bots are
    judged as before and a healthy bot of this one never pays for an interpreter."""
    quoted = shlex.quote(path)
    return (
        f"t=$(stat -c %Y {quoted} 2>/dev/null) || exec python -m tenant_bot --check-health; "
        f"age=$(( $(date +%s) - t )); "
        f'if [ "$age" -lt {int(max_age_seconds)} ]; then echo "healthy: the heartbeat is $age s old"; '
        f'else echo "unhealthy: the heartbeat is $age s old"; exit 1; fi'
    )


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


class _Route:
    """How one container reaches the host: its environment with loopback hosts replaced by
    :data:`HOST_ALIAS`, the network's gateway, and the (host, port) pairs relayed there."""

    __slots__ = ("env", "gateway", "network", "targets")

    def __init__(
        self,
        *,
        env: dict[str, str],
        gateway: str | None,
        targets: list[tuple[str, int]],
        network: str | None = None,
    ):
        self.env = env
        self.gateway = gateway
        self.network = network
        self.targets = targets


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def route_loopback(env: Mapping[str, str]) -> tuple[dict[str, str], set[tuple[str, int]]]:
    """``env`` with the loopback hosts of :data:`ROUTED_VARS` replaced by :data:`HOST_ALIAS`, and
    the (host, port) pairs the container will then reach through the relay."""
    routed = dict(env)
    targets: set[tuple[str, int]] = set()
    for name in ROUTED_VARS:
        value = env.get(name)
        if not value:
            continue
        parts = urlsplit(value)
        if not _is_loopback(parts.hostname):
            continue
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        if port is None:
            continue
        userinfo, at, _ = parts.netloc.rpartition("@")
        routed[name] = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{HOST_ALIAS}:{port}"))
        host = "127.0.0.1" if parts.hostname == "localhost" else str(parts.hostname)
        targets.add((host, port))
    return routed, targets


class LoopbackRelay:
    """TCP relays from the tenants' gateway address to loopback-only services of the host.

    One listener per port, on the gateway address at the target's own port number, forwarding to
    exactly that loopback target and nothing else (``SO_REUSEPORT``: runtimes of several processes
    can relay the same port). It runs in the worker's process: while no worker runs, bots on a bridge
    lose a host-run PostgreSQL/Redis until the next worker restores the relays (from each
    container's ``botfleet.relay`` label, on its first status or list)."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, int], asyncio.Server] = {}
        self._connections: set[asyncio.StreamWriter] = set()
        self._lock = asyncio.Lock()

    async def serve(self, bind_host: str, targets: Iterable[tuple[str, int]]) -> None:
        async with self._lock:  # concurrent ensures: one listener per port
            await self._serve(bind_host, targets)

    async def _serve(self, bind_host: str, targets: Iterable[tuple[str, int]]) -> None:
        for host, port in sorted(targets):
            if (bind_host, port) in self._servers:
                continue
            try:
                server = await asyncio.start_server(
                    partial(self._pipe, host, port), bind_host, port, reuse_port=True
                )
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise RuntimeBackendError(
                        f"docker: cannot relay {bind_host}:{port} to {host}:{port}: {exc.strerror}"
                    ) from exc
                # Something else listens there (not sharing the port): it is reachable already.
                log.warning("relay port taken", extra={"address": f"{bind_host}:{port}"})
                continue
            self._servers[(bind_host, port)] = server
            log.info("relaying", extra={"address": f"{bind_host}:{port}", "to": f"{host}:{port}"})

    async def _pipe(
        self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connections.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(host, port)
            self._connections.add(upstream)
            await asyncio.gather(_copy(reader, upstream), _copy(up_reader, writer))
        except OSError:
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    self._connections.discard(stream)
                    stream.close()

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        for writer in list(self._connections):
            writer.close()
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()
