"""Converging one tenant to its desired state: running, stopped or deleted.

Provisioning runs these steps, each idempotent, so a retry after a crash at any point finishes the job:

1. ``token`` — ``getMe`` against the configured Bot API (an unknown token is permanent: no retry);
2. ``data_plane`` — role, schema, grants, tenant migrations, Redis ACL user (the foundation's);
3. ``spec`` — the runtime spec: image, env from the tenant runtime contract, labels, limits;
4. ``runtime`` — the runtime makes it so (nothing happens when the same spec already runs);
5. ``heartbeat`` — wait until the bot reports ready (timeout: retried);
6. ``live`` — deployment ``running`` and tenant ``active`` with a ``tenant.live`` event, in one
   transaction, so the owner is told exactly once.

A step hook (``step_hook(slug, step)``) runs after each step: fault-injection tests use it to kill the
worker between steps. Each step is timed: the ``tenant running`` log line carries the seconds of each
(``steps``), and :attr:`Converger.step_seconds` sums them for ``/metrics``
(``botfleet_worker_provision_step_seconds{step}``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from redis.asyncio import Redis

from deploy_worker.errors import PermanentJobError, token_job_error
from deploy_worker.heartbeat import wait_for_heartbeat
from deploy_worker.runtimes.base import Runtime
from deploy_worker.spec import SpecBuilder
from fleet.bot_tokens import BotTokenChecker
from fleet.errors import BotTokenRejected
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.deployments import DeploymentRepository
from fleet.repositories.events import insert_event
from fleet.repositories.tenants import Tenant, TenantRepository
from fleet.tenants import TenantService
from schemas.events import TenantDeleted, TenantFailed, TenantLive, TenantRecovered, TenantSuspended

log = logging.getLogger(__name__)

STEPS = ("token", "data_plane", "spec", "runtime", "heartbeat", "live")
StepHook = Callable[[str, str], Awaitable[None]]


class Converger:
    """Brings a tenant to its desired state (dependencies are passed in)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        tenants: TenantService,
        runtime: Runtime,
        specs: SpecBuilder,
        tokens: BotTokenChecker,
        heartbeat_timeout: float,
        step_hook: StepHook | None = None,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._tenants = tenants
        self._runtime = runtime
        self._specs = specs
        self._tokens = tokens
        self._heartbeat_timeout = heartbeat_timeout
        self._step_hook = step_hook
        self.step_seconds: dict[str, float] = defaultdict(float)  # step -> seconds, summed
        self.step_count: Counter[str] = Counter()  # step -> provisions that finished it
        self.recent_steps: deque[dict[str, float]] = deque(maxlen=1000)  # the last provisions'

    async def converge(
        self, tenant_id: int, *, image: str | None = None, recreate: bool = False
    ) -> str:
        """Converge to the desired state recorded on the tenant; returns what it is now
        (``running``, ``stopped``, ``deleted``, or ``absent`` for an unknown tenant)."""
        tenant = await TenantRepository(self._pool).get_by_id(tenant_id)
        if tenant is None:
            return "absent"
        if (
            tenant.deleted_at is not None
            or tenant.desired_state == "deleted"
            or tenant.status == "deleting"
        ):
            await self.deprovision(tenant)
            return "deleted"
        if tenant.desired_state == "stopped":
            await self.suspend(tenant)
            return "stopped"
        await self.provision(tenant, image=image, recreate=recreate)
        return "running"

    async def provision(
        self, tenant: Tenant, *, image: str | None = None, recreate: bool = False
    ) -> None:
        """Run the provisioning steps (see the module docstring)."""
        tenant_id, slug = tenant.id, tenant.slug
        repo = TenantRepository(self._pool)
        deployments = DeploymentRepository(self._pool)
        if tenant.status not in ("provisioning", "active", "degraded"):
            tenant = (
                await repo.update(tenant_id, status="provisioning", status_reason=None) or tenant
            )
        secrets = self._tenants.secrets_of(tenant)
        timer = _StepTimer()

        try:
            identity = await self._tokens.get_me(secrets.bot_token)
        except BotTokenRejected as exc:
            raise token_job_error(exc) from None
        if identity.username and identity.username != tenant.bot_username:
            tenant = await repo.update(tenant_id, bot_username=identity.username) or tenant
        await self._step(slug, "token", timer)

        await self._tenants.ensure_data_plane(tenant)
        await self._step(slug, "data_plane", timer)

        names = self._tenants.names(slug)
        deployment = await deployments.get(tenant_id)
        pinned = deployment.desired_image if deployment is not None else None
        spec = self._specs.build(tenant, secrets, names, image=image or pinned)
        await self._step(slug, "spec", timer)

        current = await self._runtime.status(slug)
        if recreate or not (current.alive and current.spec_hash == spec.spec_hash):
            # A new instance must prove itself: an old heartbeat must not count as its readiness.
            await self._redis.delete(names.redis_prefix + "heartbeat")
        extra: dict[str, Any] = {"desired_image": image} if image else {}
        await deployments.upsert(
            tenant_id,
            runtime=self._runtime.kind,
            status="starting",
            image=spec.image,
            spec_hash=spec.spec_hash,
            last_error=None,
            **extra,
        )
        result = await self._runtime.ensure(spec, recreate=recreate)
        await deployments.update(
            tenant_id,
            container_id=result.status.instance_id,
            started_at=result.status.started_at,
            restart_count=result.status.restart_count,
            crash_window_started_at=None,
            crash_window_restarts=0,
        )
        await self._step(slug, "runtime", timer)

        await wait_for_heartbeat(
            self._redis,
            key=names.redis_prefix + "heartbeat",
            slug=slug,
            runtime=self._runtime,
            timeout=self._heartbeat_timeout,
        )
        await self._step(slug, "heartbeat", timer)

        async with self._pool.acquire() as conn, conn.transaction():
            locked = await TenantRepository(conn).lock(tenant_id)
            assert locked is not None
            await DeploymentRepository(conn).mark_running(tenant_id)
            if locked.status != "active":
                await TenantRepository(conn).update(tenant_id, status="active", status_reason=None)
                event_type = TenantRecovered if locked.status == "degraded" else TenantLive
                await insert_event(
                    conn,
                    tenant_id=tenant_id,
                    event=event_type(
                        bot_username=locked.bot_username, previous_status=locked.status
                    ),
                )
        timer.lap("live")
        log.info(
            "tenant running",
            extra={
                "tenant": slug,
                "image": spec.image,
                "spec_hash": spec.spec_hash,
                "steps": timer.seconds,
            },
        )
        self._count(timer)
        await self._step(slug, "live")

    async def suspend(self, tenant: Tenant) -> None:
        """Stop the bot, keep its instance and data; tenant ``suspended``."""
        tenant_id = tenant.id
        await self._runtime.stop(tenant.slug)
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await TenantRepository(conn).lock(tenant_id)
            assert locked is not None
            await DeploymentRepository(conn).upsert(
                tenant_id, runtime=self._runtime.kind, status="stopped"
            )
            if locked.status != "suspended":
                await TenantRepository(conn).update(tenant_id, status="suspended")
                if await _owner_not_told(conn, locked, lifecycle_status="expired"):
                    await insert_event(
                        conn, tenant_id=tenant_id, event=TenantSuspended(reason="operator")
                    )
        log.info("tenant suspended", extra={"tenant": tenant.slug})

    async def deprovision(self, tenant: Tenant) -> None:
        """Remove the bot, then drop its schema, role, Redis user and keys; tenant ``deleted``."""
        tenant_id, slug = tenant.id, tenant.slug
        if tenant.deleted_at is None and tenant.status != "deleting":
            await TenantRepository(self._pool).update(
                tenant_id, status="deleting", desired_state="deleted"
            )
        await self._runtime.remove(slug)
        await self._tenants.drop_data_plane(slug)
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await TenantRepository(conn).lock(tenant_id)
            assert locked is not None
            await DeploymentRepository(conn).upsert(
                tenant_id, runtime=self._runtime.kind, status="removed", container_id=None
            )
            if locked.deleted_at is None:
                await TenantRepository(conn).mark_deleted(tenant_id)
                if await _owner_not_told(conn, locked, lifecycle_status="cancelled"):
                    await insert_event(conn, tenant_id=tenant_id, event=TenantDeleted())
        log.info("tenant deprovisioned", extra={"tenant": slug})

    async def record_failure(
        self, tenant_id: int, error: str, *, final: bool, permanent: bool
    ) -> None:
        """Note a failed attempt on the deployment; when ``final`` (the job is dead) the tenant goes
        to ``error`` with the reason and the owner is told (``tenant.failed``)."""
        tenant = await TenantRepository(self._pool).get_by_id(tenant_id)
        if tenant is None:
            return
        if final and permanent and tenant.deleted_at is None:
            # The token is unusable: a bot that still runs with it would only crash-loop.
            await self._runtime.stop(tenant.slug)
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await TenantRepository(conn).lock(tenant_id)
            assert locked is not None
            await DeploymentRepository(conn).upsert(
                tenant_id, runtime=self._runtime.kind, status="failed", last_error=error[:2000]
            )
            if final and locked.deleted_at is None and locked.status != "error":
                await TenantRepository(conn).update(
                    tenant_id, status="error", status_reason=error[:500]
                )
                await insert_event(
                    conn,
                    tenant_id=tenant_id,
                    event=TenantFailed(reason=error[:500], bot_username=locked.bot_username),
                )

    async def _step(self, slug: str, step: str, timer: _StepTimer | None = None) -> None:
        if timer is not None:
            timer.lap(step)
        log.debug("provisioning step done", extra={"tenant": slug, "step": step})
        if self._step_hook is not None:
            await self._step_hook(slug, step)

    def _count(self, timer: _StepTimer) -> None:
        self.recent_steps.append(dict(timer.seconds))
        for step, seconds in timer.seconds.items():
            self.step_seconds[step] += seconds
            self.step_count[step] += 1


class _StepTimer:
    """Seconds each provisioning step took (from the end of the one before)."""

    def __init__(self) -> None:
        self._mark = time.monotonic()
        self.seconds: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.seconds[step] = round(now - self._mark, 3)
        self._mark = now


async def _owner_not_told(
    conn: asyncpg.Connection, tenant: Tenant, *, lifecycle_status: str
) -> bool:
    """Whether the owner should hear of this suspension or deletion from the worker: not when the
    subscription lifecycle decided it (subscription ``expired``: suspended for non-payment;
    ``cancelled``: deleted after retention) — it told the owner itself, in the transaction that
    decided. Otherwise an operator did it (by the API, the CLI, or by hand)."""
    subscription = await subscription_repo.get_for_tenant(conn, tenant.id)
    return subscription is None or subscription["status"] != lifecycle_status


def is_permanent(exc: BaseException) -> bool:
    """Whether a job failing with ``exc`` must not be retried."""
    return isinstance(exc, PermanentJobError)
