"""The ``swarm`` runtime: one Docker Swarm service (one replica) per tenant bot.

Swarm schedules the bot on any node, restarts it by its restart policy and rolls spec changes out by
its update policy; this is how an operator grows past one host. Stopping a tenant scales its service
to zero replicas (kept, like a stopped container); removing it deletes the service. The node the
worker talks to must be a swarm manager (``docker swarm init``), and tenant images must exist on the
nodes or in a registry they can reach.

Secrets are Docker secrets (one per value, named after the tenant and the digest of the secrets,
labelled like the service), mounted by swarm as files under ``/run/secrets`` (a tmpfs) and named by
``BOTFLEET_TENANT_<NAME>_FILE``: the service spec, ``docker inspect`` and ``ps`` never show them.
Swarm secrets cannot change, so a rotation creates new ones, points the service at them, and removes
the old ones once no task uses them (on the next ensure, or with the service).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from deploy_worker.errors import RuntimeBackendError
from deploy_worker.runtimes.base import EnsureResult, InstanceState, InstanceStatus
from deploy_worker.runtimes.docker import container_memory, parse_time, route_loopback
from deploy_worker.spec import (
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_SPEC_HASH,
    LABEL_TENANT,
    MANAGED_BY,
    RuntimeSpec,
    file_env,
    instance_name,
    secret_file_name,
)
from schemas.capacity import BotUsage

log = logging.getLogger(__name__)
T = TypeVar("T")
_SECOND_NS = 1_000_000_000
_FAILED_TASK_STATES = {"failed", "rejected", "complete", "shutdown", "orphaned"}
SWARM_SECRETS_DIR = "/run/secrets"


class SwarmRuntime:
    """Tenant bots as Docker Swarm services."""

    kind = "swarm"

    def __init__(self, *, client: Any, namespace: str, restart_delay_s: float = 2.0) -> None:
        """``client`` is a ``docker.DockerClient`` connected to a swarm manager."""
        self._client = client
        self.namespace = namespace
        self._restart_delay_s = restart_delay_s

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import docker.errors

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.DockerException as exc:
            text = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
            raise RuntimeBackendError(
                f"swarm: {text[0][:500] if text else type(exc).__name__}"
            ) from exc

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        return await self._call(self._ensure_sync, spec, recreate)

    async def stop(self, slug: str) -> bool:
        return await self._call(self._stop_sync, slug)

    async def remove(self, slug: str) -> bool:
        service = await self._call(self._get, slug)
        if service is None:
            await self._call(self._prune_secrets, slug, set())
            return False
        await self._call(service.remove)
        # Its tasks take a moment to stop; their secrets can go only then.
        await self._call(self._prune_secrets, slug, set(), 30.0)
        log.info("service removed", extra={"tenant": slug})
        return True

    async def status(self, slug: str) -> InstanceStatus:
        return await self._call(self._status_sync, slug)

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        service = await self._call(self._get, slug)
        if service is None:
            return ""

        def collect() -> str:
            chunks = service.logs(stdout=True, stderr=True, tail=tail, follow=False)
            return b"".join(chunks).decode("utf-8", errors="replace")

        return await self._call(collect)

    async def list_by_label(self, labels: dict[str, str] | None = None) -> list[InstanceStatus]:
        wanted = {LABEL_NAMESPACE: self.namespace, **(labels or {})}

        def collect() -> list[InstanceStatus]:
            services = self._client.services.list(
                filters={"label": [f"{key}={value}" for key, value in wanted.items()]}
            )
            return [self._status_of(s) for s in services if _labels(s).get(LABEL_TENANT)]

        return await self._call(collect)

    async def usage(self) -> list[BotUsage]:
        """Each running bot's node (its task's node's host name) and, for tasks on the node the
        worker talks to, its container's memory (the engine's stats API); other nodes' memory is
        unknown (None) here."""
        return await self._call(self._usage_sync)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    # -- blocking helpers ------------------------------------------------------------------------

    def _get(self, slug: str) -> Any | None:
        import docker.errors

        try:
            service = self._client.services.get(instance_name(self.namespace, slug))
        except docker.errors.NotFound:
            return None
        return service if _labels(service).get(LABEL_NAMESPACE) == self.namespace else None

    def _usage_sync(self) -> list[BotUsage]:
        import docker.errors

        services = self._client.services.list(
            filters={"label": [f"{LABEL_NAMESPACE}={self.namespace}"]}
        )
        slugs = {s.id: _labels(s).get(LABEL_TENANT) for s in services}
        slugs = {sid: slug for sid, slug in slugs.items() if slug}
        if not slugs:
            return []
        tasks = self._client.api.tasks(filters={"service": list(slugs), "desired-state": "running"})
        hosts = {
            node.id: str(node.attrs.get("Description", {}).get("Hostname") or node.id)
            for node in self._client.nodes.list()
        }
        local = self._client.info().get("Swarm", {}).get("NodeID")
        found = []
        for task in tasks:
            status = task.get("Status") or {}
            if status.get("State") != "running" or task.get("ServiceID") not in slugs:
                continue
            node = task.get("NodeID") or ""
            memory = None
            container_id = (status.get("ContainerStatus") or {}).get("ContainerID")
            if node == local and container_id:
                try:
                    memory = container_memory(self._client, container_id)
                except docker.errors.DockerException:  # its container is gone since listed
                    memory = None
            found.append(
                BotUsage(
                    slug=slugs[task["ServiceID"]],
                    host=hosts.get(node, node or "unknown"),
                    rss_bytes=memory,
                )
            )
        return found

    def _ensure_sync(self, spec: RuntimeSpec, recreate: bool) -> EnsureResult:
        result = self._converge(spec, recreate)
        # Secrets of an earlier spec (a rotation): removed once no task uses them any more.
        self._prune_secrets(spec.slug, {self._secret_name(spec, name) for name in spec.secret_env})
        return result

    def _converge(self, spec: RuntimeSpec, recreate: bool) -> EnsureResult:
        import docker.errors

        _refuse_loopback(spec)
        self._ensure_network(spec.network)
        service = self._get(spec.slug)
        if service is None:
            try:
                service = self._client.services.create(**self._service_args(spec))
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                service = self._get(spec.slug)  # created concurrently: converge it below
                if service is None:
                    raise
            else:
                log.info("service created", extra={"tenant": spec.slug, "image": spec.image})
                return EnsureResult(self._status_of(service), changed=True)
        replicas = _replicas(service)
        if (
            _labels(service).get(LABEL_SPEC_HASH) == spec.spec_hash
            and replicas == 1
            and not recreate
        ):
            return EnsureResult(self._status_of(service), changed=False)
        # A rolling update by the service's update policy (or a scale back up after a stop).
        args = self._service_args(spec)
        if recreate:
            args["force_update"] = (
                True  # the SDK bumps TaskTemplate.ForceUpdate (False must be left out)
            )
        service.update(**args)
        service.reload()
        log.info("service updated", extra={"tenant": spec.slug, "image": spec.image})
        return EnsureResult(self._status_of(service), changed=True)

    def _service_args(self, spec: RuntimeSpec) -> dict[str, Any]:
        from docker.types import Resources, RestartPolicy, ServiceMode, UpdateConfig

        env = {**spec.public_env, **file_env(spec.secret_env, SWARM_SECRETS_DIR)}
        return {
            "image": spec.image,
            "command": list(spec.command),
            "name": spec.name,
            # No secret here: only their *_FILE paths; the values are Docker secrets.
            "env": [f"{key}={value}" for key, value in env.items()],
            "secrets": self._secret_refs(spec),
            "labels": spec.labels,
            "container_labels": spec.labels,
            "mode": ServiceMode("replicated", replicas=1),
            "resources": Resources(cpu_limit=spec.nano_cpus, mem_limit=spec.memory_bytes),
            "restart_policy": RestartPolicy(
                condition="none" if spec.restart_policy == "no" else "any",
                delay=int(self._restart_delay_s * _SECOND_NS),
                max_attempts=0,
            ),
            "update_config": UpdateConfig(
                parallelism=1, order="stop-first", failure_action="pause", monitor=5 * _SECOND_NS
            ),
            "stop_grace_period": int(spec.stop_timeout * _SECOND_NS),
            "networks": [spec.network],
            "read_only": True,
            "cap_drop": ["ALL"],
        }

    def _ensure_network(self, name: str) -> None:
        """The tenants' overlay network (attachable, created when missing). A network of that name
        that swarm services cannot join (a local bridge) is refused with what to do."""
        import docker.errors

        if name in ("host", "none"):
            return
        try:
            network = self._client.networks.get(name)
        except docker.errors.NotFound:
            try:
                self._client.networks.create(
                    name,
                    driver="overlay",
                    attachable=True,
                    scope="swarm",
                    labels={LABEL_MANAGED: MANAGED_BY, "botfleet.role": "tenants"},
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
            return
        if network.attrs.get("Scope") != "swarm":
            raise RuntimeBackendError(
                f"swarm: network {name} is a local {network.attrs.get('Driver')} network; set "
                "BOTFLEET_TENANT_NETWORK to an overlay network (created when missing)"
            )

    def _secret_name(self, spec: RuntimeSpec, env_name: str) -> str:
        """A name unique to the tenant, the variable and the secrets' digest, within Docker's 64
        characters (the tenant and namespace are in its labels)."""
        key = f"{self.namespace}\0{spec.slug}\0{env_name}\0{spec.secrets_digest}".encode()
        return f"bf-secret-{hashlib.sha256(key).hexdigest()[:40]}"

    def _secret_refs(self, spec: RuntimeSpec) -> list[Any]:
        """The spec's Docker secrets (created when missing) as the service's references: files
        under /run/secrets owned by the image's user, mode 0400."""
        import docker.errors
        from docker.types import SecretReference

        uid, gid = self._image_user(spec.image)
        labels = {LABEL_TENANT: spec.slug, LABEL_NAMESPACE: self.namespace}
        refs = []
        for env_name, value in sorted(spec.secret_env.items()):
            name = self._secret_name(spec, env_name)
            found = self._client.secrets.list(filters={"name": name})
            secret = next((s for s in found if s.name == name), None)
            if secret is None:
                try:
                    secret = self._client.secrets.create(
                        name=name, data=value.encode(), labels=labels
                    )
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
                    secret = next(
                        s
                        for s in self._client.secrets.list(filters={"name": name})
                        if s.name == name
                    )
            refs.append(
                SecretReference(
                    secret.id,
                    name,
                    filename=secret_file_name(env_name),
                    uid=str(uid if uid is not None else 0),
                    gid=str(gid if gid is not None else 0),
                    mode=0o400 if uid is not None else 0o444,
                )
            )
        return refs

    def _image_user(self, image: str) -> tuple[int | None, int | None]:
        """The numeric uid/gid the image runs as, if this node has the image; else unknown."""
        import docker.errors

        try:
            user = str(self._client.images.get(image).attrs.get("Config", {}).get("User") or "0")
        except docker.errors.ImageNotFound:
            return None, None
        name, _, group = user.partition(":")
        if not name.isdigit() or (group and not group.isdigit()):
            return None, None
        return int(name), int(group or name)

    def _prune_secrets(self, slug: str, keep: set[str], wait_s: float = 0.0) -> None:
        """Remove the tenant's Docker secrets not in ``keep``; one still used by a task stays
        (retried for up to ``wait_s`` seconds, else left for the next ensure or remove)."""
        import docker.errors

        labels = [f"{LABEL_NAMESPACE}={self.namespace}", f"{LABEL_TENANT}={slug}"]
        deadline = time.monotonic() + wait_s
        while True:
            left = []
            for secret in self._client.secrets.list(filters={"label": labels}):
                if secret.name in keep:
                    continue
                try:
                    secret.remove()
                except docker.errors.NotFound:
                    continue
                except docker.errors.APIError as exc:  # in use by a task still stopping
                    left.append(_short(exc))
            if not left or time.monotonic() >= deadline:
                if left:
                    log.debug("secrets kept for now", extra={"tenant": slug, "reason": left[0]})
                return
            time.sleep(0.5)

    def _stop_sync(self, slug: str) -> bool:
        service = self._get(slug)
        if service is None or _replicas(service) == 0:
            return False
        service.scale(0)
        return True

    def _status_sync(self, slug: str) -> InstanceStatus:
        service = self._get(slug)
        return InstanceStatus.missing(slug) if service is None else self._status_of(service)

    @staticmethod
    def _status_of(service: Any) -> InstanceStatus:
        labels = _labels(service)
        tasks = service.tasks()
        running = [t for t in tasks if t.get("Status", {}).get("State") == "running"]
        ended = [t for t in tasks if t.get("Status", {}).get("State") in _FAILED_TASK_STATES]
        replicas = _replicas(service)
        if replicas == 0:
            state = InstanceState.STOPPED
        elif running:
            state = InstanceState.RUNNING
        else:
            state = InstanceState.RESTARTING if tasks else InstanceState.RUNNING
        latest = max(tasks, key=lambda t: t.get("CreatedAt", ""), default=None)
        container = (latest or {}).get("Status", {}).get("ContainerStatus", {})
        spec = service.attrs.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
        return InstanceStatus(
            slug=labels.get(LABEL_TENANT, ""),
            state=state,
            spec_hash=labels.get(LABEL_SPEC_HASH),
            instance_id=service.id,
            image=str(spec.get("Image", "")).split("@")[0] or None,
            restart_count=len(ended) if replicas else 0,
            started_at=parse_time(running[0].get("Status", {}).get("Timestamp"))
            if running
            else None,
            exit_code=container.get("ExitCode"),
            detail=(latest or {}).get("Status", {}).get("Err", "") or str(state),
        )


# The setting that names each routed variable's host, for the error below.
_HOST_SETTINGS = {
    "BOTFLEET_TENANT_DATABASE_URL": "BOTFLEET_TENANT_DATABASE_HOST (the pooler's service name)",
    "BOTFLEET_TENANT_REDIS_URL": "BOTFLEET_TENANT_REDIS_HOST",
    "BOTFLEET_TENANT_TELEGRAM_API_BASE": "BOTFLEET_TENANT_TELEGRAM_API_BASE",
}


def _refuse_loopback(spec: RuntimeSpec) -> None:
    """A service on an overlay cannot reach a loopback address of any node (the docker runtime's
    relay has no counterpart across hosts): refuse such a spec with what to set, instead of bots
    that crash-loop on a connection refused. The host network (one node, tests) sees the host's."""
    if spec.network == "host":
        return
    _, targets = route_loopback(spec.env)
    if not targets:
        return
    names = [
        setting
        for name, setting in _HOST_SETTINGS.items()
        if route_loopback({name: spec.env.get(name, "")})[1]
    ]
    raise RuntimeBackendError(
        f"swarm: tenant services on network {spec.network} cannot reach a loopback address "
        f"({', '.join(f'{h}:{p}' for h, p in sorted(targets))}); set {', '.join(names)} to an "
        "address every node reaches, such as a service on that overlay"
    )


def _labels(service: Any) -> dict[str, str]:
    return dict(service.attrs.get("Spec", {}).get("Labels") or {})


def _replicas(service: Any) -> int:
    mode = service.attrs.get("Spec", {}).get("Mode", {})
    return int(mode.get("Replicated", {}).get("Replicas", 1))


def _short(exc: Exception) -> str:
    return str(getattr(exc, "explanation", None) or exc).strip().splitlines()[0][:200]
