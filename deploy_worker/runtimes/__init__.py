"""Tenant runtimes behind one interface (:class:`~deploy_worker.runtimes.base.Runtime`).

:func:`create_runtime` picks one from the settings; heavy imports (the docker SDK) happen only for
the runtime chosen.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from deploy_worker.errors import RuntimeBackendError
from deploy_worker.runtimes.base import EnsureResult, InstanceState, InstanceStatus, Runtime
from deploy_worker.runtimes.confinement import Confinement, ConfinementUnavailable
from fleet.errors import ConfigError
from fleet.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from docker import DockerClient

    from deploy_worker.runtimes.forkclient import ExitCallback, Spawner

log = logging.getLogger(__name__)

__all__ = [
    "ConfinementUnavailable",
    "EnsureResult",
    "InstanceState",
    "InstanceStatus",
    "Runtime",
    "create_runtime",
    "docker_client",
    "process_confinement",
    "resolve_kind",
]


def process_confinement(settings: Settings, *, namespace: str) -> Confinement:
    """The process runtime's confinement as configured: required unless said otherwise, or in a
    sandbox (``botfleet up`` on embedded defaults), where it is best-effort."""
    mode = settings.process_confinement or ("best-effort" if settings.sandbox else "required")
    return Confinement(namespace=namespace, mode=mode, uid_base=settings.process_uid_base)


def docker_client(timeout: float = 30.0) -> DockerClient | None:
    """A docker SDK client if an engine answers (``DOCKER_HOST`` or the local socket), else None."""
    try:
        import docker
        import docker.errors

        client = docker.from_env(timeout=int(timeout))
        client.ping()
        return client
    except Exception as exc:  # any failure means "no engine here"
        log.debug("no docker engine", extra={"reason": str(exc)[:200]})
        return None


def resolve_kind(settings: Settings, *, sandbox: bool = False) -> str:
    """``settings.runtime``, with ``auto`` resolved: process for a ``sandbox`` (``botfleet up`` on
    embedded defaults), else docker when an engine answers; never a silent fall back to process:
    ``auto`` without an engine raises :class:`ConfigError` saying how to choose explicitly."""
    if settings.runtime != "auto":
        return settings.runtime
    if sandbox:
        return "process"
    client = docker_client(timeout=5)
    if client is None:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise ConfigError(
            f"BOTFLEET_RUNTIME=auto but Docker is unreachable at {where}; not falling back to "
            "the process runtime: set BOTFLEET_RUNTIME=docker and fix DOCKER_HOST or the socket, "
            "or BOTFLEET_RUNTIME=process to accept its weaker isolation (bots run as this user, "
            "without limits)"
        )
    client.close()
    return "docker"


def create_runtime(
    settings: Settings,
    *,
    namespace: str,
    kind: str | None = None,
    observer: bool = False,
    fork_server: Callable[[ExitCallback], Spawner] | None = None,
) -> Runtime:
    """Build the runtime ``kind`` (default: from settings) for ``namespace`` (the role prefix).

    ``observer``: for read-only callers beside a running worker (``fleet status``, logs); the process
    runtime then neither takes its state directory's lock nor supervises anything. ``fork_server``:
    the process runtime's fork server, built from its exit callback (tests share one; default: its
    own, preloading ``settings.process_preload``).

    Blocking (it may ping the Docker engine): call it at start-up, or in a thread."""
    kind = kind or resolve_kind(settings)
    if kind == "process":
        from deploy_worker.runtimes.process import ProcessRuntime

        preload = [m.strip() for m in settings.process_preload.split(",") if m.strip()]
        return ProcessRuntime(
            namespace=namespace,
            state_dir=Path(settings.process_state_dir).absolute(),
            preload=preload,
            stop_timeout=settings.stop_timeout_s,
            observer=observer,
            fork_server=fork_server,
            confinement=None if observer else process_confinement(settings, namespace=namespace),
            memory_merge=settings.memory_merge,
        )
    if kind in ("docker", "swarm"):
        client = docker_client()
        if client is None:
            raise RuntimeBackendError(
                f"BOTFLEET_RUNTIME={kind} but no Docker engine answers (check DOCKER_HOST or "
                "/var/run/docker.sock), or use BOTFLEET_RUNTIME=process"
            )
        if kind == "docker":
            from deploy_worker.runtimes.docker import DockerRuntime

            warm = () if observer else (settings.tenant_image,)
            return DockerRuntime(client=client, namespace=namespace, warm_images=warm)
        from deploy_worker.runtimes.swarm import SwarmRuntime

        return SwarmRuntime(client=client, namespace=namespace)
    raise ConfigError(f"BOTFLEET_RUNTIME: unknown runtime {kind!r}; use docker, process or swarm")
