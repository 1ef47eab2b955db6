"""SQL over ``control.deployments``: one row per tenant recording what the deploy worker runs for it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from fleet.db import Executor
from fleet.repositories.tenants import Tenant

_COLUMNS = frozenset(
    {
        "runtime",
        "status",
        "image",
        "spec_hash",
        "container_id",
        "restart_count",
        "last_error",
        "started_at",
        "ready_at",
        "desired_image",
        "crash_window_started_at",
        "crash_window_restarts",
    }
)


@dataclass(frozen=True, slots=True)
class Deployment:
    """A row of ``control.deployments``: what the deploy worker runs for one tenant."""

    tenant_id: int
    runtime: str
    status: str
    image: str | None
    spec_hash: str | None
    container_id: str | None
    restart_count: int
    last_error: str | None
    started_at: datetime | None
    ready_at: datetime | None
    desired_image: str | None
    crash_window_started_at: datetime | None
    crash_window_restarts: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Deployment:
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True, slots=True)
class FleetRow:
    """A live tenant, its deployment's columns (None when it has no deployment row yet) and whether
    a job of it is queued or running (``busy``)."""

    tenant: Tenant
    runtime: str | None
    deployment_status: str | None
    image: str | None
    spec_hash: str | None
    container_id: str | None
    restart_count: int | None
    last_error: str | None
    started_at: datetime | None
    ready_at: datetime | None
    desired_image: str | None
    crash_window_started_at: datetime | None
    crash_window_restarts: int | None
    busy: bool

    @classmethod
    def of(cls, row: asyncpg.Record) -> FleetRow:
        return cls(
            tenant=Tenant.of(row),
            runtime=row["runtime"],
            deployment_status=row["deployment_status"],
            image=row["image"],
            spec_hash=row["spec_hash"],
            container_id=row["container_id"],
            restart_count=row["restart_count"],
            last_error=row["last_error"],
            started_at=row["started_at"],
            ready_at=row["ready_at"],
            desired_image=row["desired_image"],
            crash_window_started_at=row["crash_window_started_at"],
            crash_window_restarts=row["crash_window_restarts"],
            busy=row["busy"],
        )


class DeploymentRepository:
    """Reads and writes deployment rows; takes a connection so callers own the transaction."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def get(self, tenant_id: int) -> Deployment | None:
        row = await self._db.fetchrow(
            "SELECT * FROM control.deployments WHERE tenant_id = $1", tenant_id
        )
        return None if row is None else Deployment.of(row)

    async def upsert(self, tenant_id: int, *, runtime: str, **columns: Any) -> Deployment:
        """Insert or update the tenant's row; only ``columns`` given change (and ``updated_at``)."""
        unknown = set(columns) - _COLUMNS
        if unknown:
            raise ValueError(f"unknown deployment columns: {sorted(unknown)}")
        names = ["runtime", *columns]
        values = [runtime, *columns.values()]
        placeholders = ", ".join(f"${i}" for i in range(2, len(names) + 2))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names)
        row = await self._db.fetchrow(
            f"INSERT INTO control.deployments (tenant_id, {', '.join(names)})"
            f" VALUES ($1, {placeholders})"
            f" ON CONFLICT (tenant_id) DO UPDATE SET {updates}, updated_at = now() RETURNING *",
            tenant_id,
            *values,
        )
        assert row is not None
        return Deployment.of(row)

    async def update(self, tenant_id: int, **columns: Any) -> None:
        """Change ``columns`` of an existing row (no-op when the tenant has none)."""
        unknown = set(columns) - _COLUMNS
        if unknown:
            raise ValueError(f"unknown deployment columns: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
        await self._db.execute(
            f"UPDATE control.deployments SET {assignments}, updated_at = now() WHERE tenant_id = $1",
            tenant_id,
            *columns.values(),
        )

    async def mark_running(self, tenant_id: int) -> None:
        """The bot answered: ``running``, ready now, no error."""
        await self._db.execute(
            "UPDATE control.deployments SET status = 'running', ready_at = now(),"
            " last_error = NULL, updated_at = now() WHERE tenant_id = $1",
            tenant_id,
        )

    async def upgradable(self) -> list[asyncpg.Record]:
        """Live tenants meant to run and running (``active`` or ``degraded``), with their image and
        desired image: what a fleet upgrade goes through, by id."""
        return await self._db.fetch(
            "SELECT t.id, t.slug, d.image, d.desired_image FROM control.tenants t"
            " JOIN control.deployments d ON d.tenant_id = t.id"
            " WHERE t.deleted_at IS NULL AND t.desired_state = 'running'"
            " AND t.status IN ('active', 'degraded') ORDER BY t.id"
        )

    async def still_idle_as_seen(self, tenant_id: int, *, status: str, desired_state: str) -> bool:
        """Lock the tenant (inside the caller's transaction) and tell whether it is still in the
        state a reconcile decision was based on, with no job queued or running."""
        return bool(
            await self._db.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM control.jobs j WHERE j.tenant_id = t.id"
                "                   AND j.status IN ('queued', 'running'))"
                " FROM control.tenants t WHERE t.id = $1 AND t.status = $2"
                " AND t.desired_state = $3 AND t.deleted_at IS NULL FOR UPDATE OF t",
                tenant_id,
                status,
                desired_state,
            )
        )

    async def fleet_view(self) -> list[FleetRow]:
        """Every live tenant with its deployment and whether it has a queued or running job — what
        the reconciler and ``fleet status`` compare against the runtime, in one query."""
        rows = await self._db.fetch(
            "SELECT t.*,"
            " d.runtime, d.status AS deployment_status, d.image, d.spec_hash, d.container_id,"
            " d.restart_count, d.last_error, d.started_at, d.ready_at, d.desired_image,"
            " d.crash_window_started_at, d.crash_window_restarts,"
            " EXISTS (SELECT 1 FROM control.jobs j WHERE j.tenant_id = t.id"
            "         AND j.status IN ('queued', 'running')) AS busy"
            " FROM control.tenants t LEFT JOIN control.deployments d ON d.tenant_id = t.id"
            " WHERE t.deleted_at IS NULL ORDER BY t.id"
        )
        return [FleetRow.of(row) for row in rows]
