"""The reconciler: compare what should run with what runs, and fix the difference.

Level-triggered, like a Kubernetes controller. On start and every N seconds, one worker at a time (a
PostgreSQL advisory lock elects it for the pass):

1. lists the runtime's instances of this installation, THEN reads every live tenant (in that order, so
   a tenant created during the pass is never mistaken for an orphan);
2. removes orphans — labelled instances of unknown or deleted tenants — at once;
3. for tenants without a queued or running job, queues the job that converges them: ``redeploy``
   for a bot that should run but is missing, stopped, on an old spec or silent (no heartbeat twice in
   a row); ``suspend`` for one that runs but should not; ``provision`` / ``resume`` / ``deprovision``
   for a lost job. Jobs keep "one job per tenant at a time", so the reconciler never races a handler;
4. ends tenant database backends that outlive the tenant role's statement or idle-in-transaction
   timeout (a tenant can ``SET`` those away in its own session);
5. measures the live bots (host, memory: :meth:`MeasuresUsage.usage`) and stores the
   :class:`~schemas.capacity.CapacitySnapshot` in Redis for ``botfleet fleet status`` and ``/metrics``
   (:mod:`fleet.capacity`);
6. marks a crash-looping tenant ``degraded`` (``crash_loop_restarts`` restarts within
   ``crash_loop_window_s``) with a ``tenant.degraded`` event, and back ``active`` with
   ``tenant.recovered`` once a window passes quietly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from deploy_worker.runtimes.base import InstanceState, InstanceStatus, MeasuresUsage, Runtime
from deploy_worker.spec import SpecBuilder
from fleet import jobs
from fleet.capacity import store_snapshot
from fleet.data_plane import DEFAULT_ROLE_LIMITS, TenantRoleLimits, terminate_runaway_backends
from fleet.db import session_lock
from fleet.pooler_stats import PoolerStatsError, read_pooler_figures
from fleet.repositories.deployments import DeploymentRepository, FleetRow
from fleet.repositories.events import insert_event
from fleet.repositories.tenants import TenantRepository
from fleet.tenants import TenantService
from kit.memory_merge import read_ksm
from schemas.capacity import CapacitySnapshot, MemoryMergeFigures
from schemas.events import TenantDegraded, TenantRecovered
from schemas.runtime import TENANT_DB_POOL_MAX_DEFAULT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """A job to queue for a tenant, and why."""

    kind: str
    reason: str
    force: bool = False


@dataclass
class ReconcileReport:
    """What one pass saw and did."""

    leader: bool = True
    tenants: int = 0
    instances: int = 0
    orphans_removed: list[str] = field(default_factory=list)
    enqueued: dict[str, str] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    runaway_backends_terminated: int = 0
    measured: CapacitySnapshot | None = None
    duration_s: float = 0.0


def decide(
    status: str,
    desired: str,
    instance: InstanceStatus | None,
    *,
    expected_hash: str | None,
    silent: bool = False,
) -> Decision | None:
    """The job a tenant needs, given its status, its desired state and its instance (None:
    nothing to do)."""
    alive = instance is not None and instance.alive
    if status == "error":
        return None  # an operator must act (e.g. a new bot token); retrying blindly cannot help
    if desired == "deleted" or status == "deleting":
        return Decision("deprovision", "tenant is being deleted")
    if desired == "stopped":
        if alive:
            return Decision("suspend", "instance runs but the tenant should be stopped")
        # An unpaid purchase (``new``, nothing ever ran) waits for its payment: it is not drift.
        if status in ("provisioning", "active", "degraded"):
            return Decision("suspend", f"tenant is {status} but should be stopped")
        return None
    # desired running
    if status in ("new", "provisioning"):
        return Decision("provision", "provisioning has no job (lost)")
    if status == "suspended":
        return Decision("resume", "tenant is suspended but should run")
    if instance is None or instance.state == InstanceState.MISSING:
        return Decision("redeploy", "instance missing")
    if not alive:
        return Decision("redeploy", f"instance {instance.state}")
    if expected_hash is not None and instance.spec_hash != expected_hash:
        return Decision("redeploy", "spec changed")
    if silent and instance.state == InstanceState.RUNNING:
        return Decision("redeploy", "no heartbeat", force=True)
    return None


class Reconciler:
    """One reconcile pass at a time per installation (see the module docstring)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        runtime: Runtime,
        specs: SpecBuilder,
        tenants: TenantService,
        crash_loop_restarts: int = 5,
        crash_loop_window_s: float = 600.0,
        heartbeat_grace_s: float = 60.0,
        concurrency: int = 8,
        role_limits: TenantRoleLimits = DEFAULT_ROLE_LIMITS,
        pool_max: int = TENANT_DB_POOL_MAX_DEFAULT,
        capacity_ttl_s: float = 90.0,
        pooler_stats_url: str | None = None,
    ) -> None:
        """``pool_max``: connections one tenant bot's pool opens at most; ``capacity_ttl_s``: how
        long a capacity snapshot stays in Redis (a few passes); ``pooler_stats_url``: the tenants'
        PgBouncer admin console (its figures join the snapshot; None: bots connect directly)."""
        self._pool = pool
        self._redis = redis
        self._runtime = runtime
        self._specs = specs
        self._tenants = tenants
        self._crash_restarts = crash_loop_restarts
        self._crash_window = timedelta(seconds=crash_loop_window_s)
        self._heartbeat_grace = timedelta(seconds=heartbeat_grace_s)
        self._concurrency = concurrency
        self._role_limits = role_limits
        self._pool_max = pool_max
        self._capacity_ttl_s = capacity_ttl_s
        self._pooler_stats_url = pooler_stats_url
        self._suspects: set[str] = set()  # silent once; redeployed if silent again next pass
        digest = hashlib.sha256(f"botfleet:reconciler:{runtime.namespace}".encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)

    async def run_once(self) -> ReconcileReport:
        """One pass; skipped (``leader=False``) while another worker's pass holds the lock."""
        started = time.monotonic()
        async with session_lock(self._pool, self._lock_key) as leader:
            if not leader:
                return ReconcileReport(leader=False)
            report = await self._pass()
        report.duration_s = round(time.monotonic() - started, 4)
        if (
            report.orphans_removed
            or report.enqueued
            or report.degraded
            or report.recovered
            or report.errors
            or report.runaway_backends_terminated
        ):
            log.info(
                "reconciled",
                extra={
                    "tenants": report.tenants,
                    "orphans_removed": report.orphans_removed,
                    "enqueued": report.enqueued,
                    "degraded": report.degraded,
                    "recovered": report.recovered,
                    "errors": report.errors,
                    "runaway_backends_terminated": report.runaway_backends_terminated,
                    "duration_s": report.duration_s,
                },
            )
        return report

    async def _pass(self) -> ReconcileReport:
        instances = {i.slug: i for i in await self._runtime.list_by_label()}
        rows = await DeploymentRepository(self._pool).fleet_view()
        report = ReconcileReport(tenants=len(rows), instances=len(instances))
        live = {row.tenant.slug for row in rows}
        await self._remove_orphans([slug for slug in instances if slug not in live], report)
        await self._stop_runaway_backends(report)
        await self._measure(live, report)
        silent = await self._silent_bots(rows, instances)
        decisions: list[tuple[FleetRow, Decision]] = []
        now = datetime.now(UTC)
        for row in rows:
            if row.busy:
                continue
            instance = instances.get(row.tenant.slug)
            try:
                expected = (
                    self._expected_hash(row)
                    if row.tenant.status in ("active", "degraded")
                    else None
                )
            except Exception as exc:  # a tenant that cannot be specced must not stop the pass
                report.errors[row.tenant.slug] = f"spec: {type(exc).__name__}: {exc}"[:300]
                continue
            decision = decide(
                row.tenant.status,
                row.tenant.desired_state,
                instance,
                expected_hash=expected,
                silent=row.tenant.slug in silent,
            )
            if decision is not None:
                decisions.append((row, decision))
            elif instance is not None and row.tenant.status in ("active", "degraded"):
                await self._watch_restarts(row, instance, now, report)
        await self._enqueue(decisions, report)
        return report

    async def _stop_runaway_backends(self, report: ReconcileReport) -> None:
        """A tenant may ``SET`` its statement and idle-in-transaction timeouts away (they are only
        its role's defaults): end its backends that outlive them, so no tenant holds locks, a
        connection slot or vacuum back for longer than the limits allow."""
        try:
            async with self._tenants.ddl_pool.acquire() as conn:  # pg_signal_backend's holder
                killed = await terminate_runaway_backends(
                    conn, self._runtime.namespace, self._role_limits
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            report.errors["*runaway-backends*"] = f"{type(exc).__name__}: {exc}"[:300]
            return
        report.runaway_backends_terminated = len(killed)

    async def _measure(self, live: set[str], report: ReconcileReport) -> None:
        """Store where the live tenants' bots run and their memory (for operators); a runtime or
        Redis failure costs this pass's figures only."""
        if not isinstance(self._runtime, MeasuresUsage):
            return
        try:
            usage = await self._runtime.usage()
            pooler = None
            if self._pooler_stats_url is not None:
                try:
                    pooler = await read_pooler_figures(self._pooler_stats_url)
                except PoolerStatsError as exc:  # the bots' figures still count
                    report.errors["*pooler*"] = str(exc)[:300]
            merging = await asyncio.to_thread(memory_merge_figures, self._runtime)
            snapshot = CapacitySnapshot(
                runtime=self._runtime.kind,
                measured_at=datetime.now(UTC),
                pool_max=self._pool_max,
                bots=sorted((u for u in usage if u.slug in live), key=lambda u: u.slug),
                pooler=pooler,
                memory_merge=merging,
            )
            await store_snapshot(
                self._redis,
                snapshot,
                role_prefix=self._runtime.namespace,
                ttl_s=self._capacity_ttl_s,
            )
        except Exception as exc:  # figures for operators must never stop a pass
            report.errors["*capacity*"] = f"{type(exc).__name__}: {exc}"[:300]
            return
        report.measured = snapshot

    def _expected_hash(self, row: FleetRow) -> str:
        tenant = row.tenant
        secrets = self._tenants.secrets_of(tenant)
        names = self._tenants.names(tenant.slug)
        return self._specs.build(tenant, secrets, names, image=row.desired_image).spec_hash

    async def _remove_orphans(self, slugs: list[str], report: ReconcileReport) -> None:
        limit = asyncio.Semaphore(self._concurrency)

        async def remove(slug: str) -> None:
            async with limit:
                try:
                    await self._runtime.remove(slug)
                    report.orphans_removed.append(slug)
                except Exception as exc:
                    report.errors[slug] = f"remove orphan: {exc}"[:300]

        await asyncio.gather(*(remove(slug) for slug in slugs))

    async def _silent_bots(
        self, rows: list[FleetRow], instances: dict[str, InstanceStatus]
    ) -> set[str]:
        """Running, settled bots whose heartbeat is missing in this pass and the previous one."""
        cutoff = datetime.now(UTC) - self._heartbeat_grace
        candidates = [
            row.tenant.slug
            for row in rows
            if row.tenant.status == "active"
            and row.tenant.desired_state == "running"
            and (inst := instances.get(row.tenant.slug)) is not None
            and inst.state == InstanceState.RUNNING
            and inst.started_at is not None
            and inst.started_at < cutoff
        ]
        if not candidates:
            self._suspects.clear()
            return set()
        keys = [self._tenants.names(slug).redis_prefix + "heartbeat" for slug in candidates]
        try:
            values = await self._redis.mget(keys)
        except Exception:
            log.warning("cannot read heartbeats; skipping the liveness check this pass")
            return set()
        missing = {slug for slug, value in zip(candidates, values, strict=True) if value is None}
        silent = missing & self._suspects
        self._suspects = missing - silent
        return silent

    async def _enqueue(
        self, decisions: list[tuple[FleetRow, Decision]], report: ReconcileReport
    ) -> None:
        if not decisions:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            repo = DeploymentRepository(conn)
            for row, decision in decisions:
                # The pass read a snapshot; act only if the tenant is still as it was seen then.
                if not await repo.still_idle_as_seen(
                    row.tenant.id, status=row.tenant.status, desired_state=row.tenant.desired_state
                ):
                    continue
                payload: dict[str, Any] = {"reason": decision.reason, "source": "reconciler"}
                if decision.force:
                    payload["force"] = True
                await jobs.enqueue(
                    conn, kind=decision.kind, tenant_id=row.tenant.id, payload=payload
                )
                report.enqueued[row.tenant.slug] = f"{decision.kind}: {decision.reason}"

    async def _watch_restarts(
        self, row: FleetRow, instance: InstanceStatus, now: datetime, report: ReconcileReport
    ) -> None:
        observed = row.restart_count or 0
        window_start = row.crash_window_started_at
        restarts = row.crash_window_restarts or 0
        current = instance.restart_count
        if current == observed and not (
            row.tenant.status == "degraded" and _quiet(window_start, now, self._crash_window)
        ):
            return
        async with self._pool.acquire() as conn, conn.transaction():
            repo = DeploymentRepository(conn)
            if current > observed:
                if window_start is None or now - window_start > self._crash_window:
                    window_start, restarts = now, 0
                restarts += current - observed
                await repo.update(
                    row.tenant.id,
                    restart_count=current,
                    crash_window_started_at=window_start,
                    crash_window_restarts=restarts,
                )
                if restarts >= self._crash_restarts and row.tenant.status == "active":
                    reason = f"crash loop: {restarts} restarts within {int(self._crash_window.total_seconds())}s"
                    if await TenantRepository(conn).set_status_if(
                        row.tenant.id, frm="active", to="degraded", reason=reason
                    ):
                        await repo.update(row.tenant.id, status="degraded", last_error=reason)
                        await insert_event(
                            conn,
                            tenant_id=row.tenant.id,
                            event=TenantDegraded(reason=reason, restarts=restarts),
                        )
                        report.degraded.append(row.tenant.slug)
            elif current < observed:  # a new instance counts from zero
                await repo.update(row.tenant.id, restart_count=current)
            elif (
                row.tenant.status == "degraded"
                and instance.state == InstanceState.RUNNING
                and await TenantRepository(conn).set_status_if(
                    row.tenant.id, frm="degraded", to="active", reason=None
                )
            ):
                await repo.update(
                    row.tenant.id,
                    status="running",
                    last_error=None,
                    crash_window_started_at=None,
                    crash_window_restarts=0,
                )
                await insert_event(conn, tenant_id=row.tenant.id, event=TenantRecovered())
                report.recovered.append(row.tenant.slug)


def _quiet(window_start: datetime | None, now: datetime, window: timedelta) -> bool:
    return window_start is None or now - window_start > window


def memory_merge_figures(runtime: object) -> MemoryMergeFigures | None:
    """KSM's counters on this host and whether the runtime's bots are opted in (blocking: sysfs);
    None on a kernel without KSM."""
    figures = read_ksm()
    if figures is None:
        return None
    chosen = getattr(runtime, "memory_merge", None)
    chosen = chosen if isinstance(chosen, dict) else {}
    enabled = chosen.get("enabled")
    return MemoryMergeFigures(
        host=socket.gethostname(),
        bots_opted_in=enabled if isinstance(enabled, bool) else None,
        reason=str(chosen.get("reason") or ""),
        ksmd_running=figures.get("run") == 1,
        pages_shared=figures.get("pages_shared", 0),
        pages_sharing=figures.get("pages_sharing", 0),
        general_profit_bytes=figures.get("general_profit", 0),
    )
