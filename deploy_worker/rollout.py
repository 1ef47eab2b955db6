"""Operator views and actions over the whole fleet: status (desired vs actual) and rolling upgrades.

The rolling upgrade only queues and watches jobs — running workers do the work — so it is as durable
as any job: pinning a batch of tenants to the new image and queueing their redeploys happens in one
transaction per tenant, at most ``parallel`` at a time, and it stops queueing once more than
``max_failures`` tenants failed (a bad image never reaches the whole fleet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from deploy_worker.reconciler import decide
from deploy_worker.runtimes.base import InstanceState, Runtime
from deploy_worker.spec import SpecBuilder
from fleet import jobs
from fleet.capacity import Capacity
from fleet.repositories.deployments import DeploymentRepository
from fleet.tenants import TenantService

log = logging.getLogger(__name__)


@dataclass
class TenantView:
    """One line of ``botfleet fleet status``."""

    slug: str
    status: str
    desired_state: str
    deployment: str | None
    actual: str
    image: str | None
    restarts: int
    busy: bool
    drift: str | None
    host: str | None = None  # where the bot ran at the worker's last measurement (None: not live)
    rss_bytes: int | None = None
    uss_bytes: int | None = None


@dataclass
class FleetStatus:
    tenants: list[TenantView]
    orphans: list[str]
    capacity: Capacity | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenants": [asdict(t) for t in self.tenants],
            "orphans": self.orphans,
            "capacity": None if self.capacity is None else self.capacity.as_dict(),
        }


async def fleet_status(
    pool: asyncpg.Pool,
    runtime: Runtime,
    *,
    specs: SpecBuilder | None = None,
    tenants: TenantService | None = None,
    capacity: Capacity | None = None,
) -> FleetStatus:
    """Desired vs actual for every tenant. With ``specs`` and ``tenants`` (the master key is known)
    a changed spec shows as drift too; with ``capacity`` each live bot's host and memory as the
    worker last measured them."""
    snapshot = capacity.snapshot if capacity is not None else None
    usages = snapshot.by_slug() if snapshot is not None else {}
    instances = {i.slug: i for i in await runtime.list_by_label()}
    rows = await DeploymentRepository(pool).fleet_view()
    views = []
    for row in rows:
        instance = instances.get(row.tenant.slug)
        expected = None
        if (
            specs is not None
            and tenants is not None
            and row.tenant.status in ("active", "degraded")
        ):
            tenant = row.tenant
            expected = specs.build(
                tenant,
                tenants.secrets_of(tenant),
                tenants.names(tenant.slug),
                image=row.desired_image,
            ).spec_hash
        decision = decide(
            row.tenant.status, row.tenant.desired_state, instance, expected_hash=expected
        )
        usage = usages.get(row.tenant.slug)
        views.append(
            TenantView(
                slug=row.tenant.slug,
                status=row.tenant.status,
                desired_state=row.tenant.desired_state,
                deployment=row.deployment_status,
                actual=str(instance.state) if instance else str(InstanceState.MISSING),
                image=instance.image if instance else row.image,
                restarts=instance.restart_count if instance else 0,
                busy=row.busy,
                drift=f"{decision.kind}: {decision.reason}" if decision else None,
                host=usage.host if usage else None,
                rss_bytes=usage.rss_bytes if usage else None,
                uss_bytes=usage.uss_bytes if usage else None,
            )
        )
    live = {row.tenant.slug for row in rows}
    return FleetStatus(
        views, sorted(slug for slug in instances if slug not in live), capacity=capacity
    )


@dataclass
class UpgradeReport:
    image: str
    upgraded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    stopped_early: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped_early


@dataclass(frozen=True)
class _InFlight:
    """One tenant being upgraded: its redeploy job's deadline and the image pin to restore."""

    slug: str
    tenant_id: int
    previous_image: str | None
    deadline: float


class RollingUpgrade:
    """Moves every running tenant to ``image``, ``parallel`` at a time."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        image: str,
        parallel: int = 5,
        max_failures: int = 0,
        attempts: int = 2,
        poll_s: float = 0.5,
        timeout_s: float = 600.0,
        on_progress: Callable[[str, str], None] | None = None,
    ) -> None:
        self._pool = pool
        self._image = image
        self._parallel = max(1, parallel)
        self._max_failures = max(0, max_failures)
        self._attempts = attempts
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._on_progress = on_progress or (lambda slug, outcome: None)

    async def run(self) -> UpgradeReport:
        started = time.monotonic()
        report = UpgradeReport(self._image)
        rows = await DeploymentRepository(self._pool).upgradable()
        report.already = [r["slug"] for r in rows if r["image"] == self._image]
        todo = [r for r in rows if r["image"] != self._image]
        inflight: dict[int, _InFlight] = {}  # by job id
        queue = list(todo)
        while queue or inflight:
            while (
                queue
                and len(inflight) < self._parallel
                and len(report.failed) <= self._max_failures
            ):
                row = queue.pop(0)
                job_id = await self._start(row["id"])
                inflight[job_id] = _InFlight(
                    row["slug"], row["id"], row["desired_image"], time.monotonic() + self._timeout_s
                )
            if len(report.failed) > self._max_failures and queue:
                report.stopped_early = True
                report.not_started = [r["slug"] for r in queue]
                queue.clear()
                log.error(
                    "upgrade stopped: too many failures", extra={"failed": list(report.failed)}
                )
            await asyncio.sleep(self._poll_s)
            await self._collect(inflight, report)
        report.duration_s = round(time.monotonic() - started, 2)
        return report

    async def _start(self, tenant_id: int) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            await DeploymentRepository(conn).update(tenant_id, desired_image=self._image)
            job = await jobs.enqueue(
                conn,
                kind="redeploy",
                tenant_id=tenant_id,
                payload={"image": self._image, "source": "upgrade"},
                max_attempts=self._attempts,
            )
        return int(job["id"])

    async def _collect(self, inflight: dict[int, _InFlight], report: UpgradeReport) -> None:
        if not inflight:
            return
        rows = await jobs.outcomes(self._pool, list(inflight))
        now = time.monotonic()
        for row in rows:
            item = inflight[row["id"]]
            slug = item.slug
            if row["status"] == "done":
                report.upgraded.append(slug)
            elif row["status"] in ("dead", "cancelled"):
                report.failed[slug] = row["last_error"] or row["status"]
            elif now > item.deadline:
                report.failed[slug] = (
                    f"not done within {self._timeout_s:g}s (job {row['id']} {row['status']})"
                )
            else:
                continue
            if slug in report.failed:
                # Pin the tenant back to the image it had, or the reconciler would keep retrying
                # the image that just failed on it.
                await DeploymentRepository(self._pool).update(
                    item.tenant_id, desired_image=item.previous_image
                )
            del inflight[row["id"]]
            self._on_progress(slug, "ok" if row["status"] == "done" else "failed")
