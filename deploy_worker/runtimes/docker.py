"""The ``docker`` runtime: one container per tenant bot through the Docker Engine API (docker SDK).

The SDK is blocking, so every call runs in a worker thread (``asyncio.to_thread``). Containers carry
the labels ``botfleet.tenant``, ``botfleet.namespace`` and ``botfleet.spec-hash``, memory and CPU
limits, a restart policy, a capped json-file log, no capabilities and a read-only root file system.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from deploy_worker.errors import RuntimeBackendError
from deploy_worker.runtimes.base import EnsureResult, InstanceState, InstanceStatus
from deploy_worker.spec import (
    LABEL_NAMESPACE,
    LABEL_SPEC_HASH,
    LABEL_TENANT,
    RuntimeSpec,
    instance_name,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
LABEL_STOP_TIMEOUT = "botfleet.stop-timeout"  # seconds between SIGTERM and SIGKILL on stop
_NS = 1_000_000_000  # Docker counts health-check durations in nanoseconds

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

    def __init__(self, *, client: Any, namespace: str) -> None:
        """``client`` is a ``docker.DockerClient`` (e.g. ``docker.from_env()``)."""
        self._client = client
        self.namespace = namespace

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import docker.errors

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.DockerException as exc:
            raise RuntimeBackendError(f"docker: {_explain(exc)}") from exc

    # -- the interface ---------------------------------------------------------------------------

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        return await self._call(self._ensure_sync, spec, recreate)

    async def stop(self, slug: str) -> bool:
        return await self._call(self._stop_sync, slug)

    async def remove(self, slug: str) -> bool:
        return await self._call(self._remove_sync, slug)

    async def status(self, slug: str) -> InstanceStatus:
        container = await self._call(self._get, slug)
        return InstanceStatus.missing(slug) if container is None else self._status_of(container)

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
        return [self._status_of(c) for c in containers if c.labels.get(LABEL_TENANT)]

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

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

    def _ensure_sync(self, spec: RuntimeSpec, recreate: bool) -> EnsureResult:
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
            self._ensure_network(spec.network)
            try:
                container = self._client.containers.create(**self._create_args(spec))
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # a concurrent create of the same name: look again
                    recreate = False
                    continue
                raise
            container.start()
            container.reload()
            log.info("container started", extra={"tenant": spec.slug, "image": spec.image})
            return EnsureResult(self._status_of(container), changed=True)
        raise RuntimeBackendError(f"docker: container {spec.name} keeps changing under us")

    def _create_args(self, spec: RuntimeSpec) -> dict[str, Any]:
        args: dict[str, Any] = {
            "image": spec.image,
            "command": list(spec.command),
            "name": spec.name,
            "environment": dict(spec.env),
            "labels": {**spec.labels, LABEL_STOP_TIMEOUT: str(int(spec.stop_timeout))},
            "detach": True,
            "mem_limit": spec.memory_bytes,
            "memswap_limit": spec.memory_bytes,
            "nano_cpus": spec.nano_cpus,
            "pids_limit": 256,
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
            # check never recreates running bots.
            "healthcheck": {
                "test": ["CMD", "python", "-m", "tenant_bot", "--check-health"],
                "interval": 15 * _NS,
                "timeout": 10 * _NS,
                "retries": 3,
                "start_period": 60 * _NS,
            },
        }
        if spec.network == "host":
            args["network_mode"] = "host"
        else:
            args["network"] = spec.network
            args["hostname"] = spec.name
        return args

    def _ensure_network(self, name: str) -> None:
        import docker.errors

        if name in ("host", "bridge", "none"):
            return
        try:
            self._client.networks.get(name)
        except docker.errors.NotFound:
            try:
                self._client.networks.create(
                    name, driver="bridge", labels={LABEL_NAMESPACE: self.namespace}
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise

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


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
