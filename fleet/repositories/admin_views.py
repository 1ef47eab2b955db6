"""Read-side SQL of the admin API: jobs, deployments, subscriptions and the audit log joined with what
an admin wants to see next to them (the tenant's slug), in keyset pages, plus the counts behind
``/metrics``. Writes stay with their owners (:mod:`fleet.jobs`, the deploy worker, billing)."""

from __future__ import annotations

import asyncpg

from fleet.db import Executor


class AdminViews:
    """Queries for listings and dashboards; nothing here writes."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def jobs(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        tenant_id: int | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        """Jobs newest first (keyset on ``id``)."""
        return await self._db.fetch(
            "SELECT j.*, t.slug AS tenant_slug FROM control.jobs j"
            " LEFT JOIN control.tenants t ON t.id = j.tenant_id"
            " WHERE ($1::text IS NULL OR j.status = $1) AND ($2::text IS NULL OR j.kind = $2)"
            " AND ($3::bigint IS NULL OR j.tenant_id = $3) AND ($4::bigint IS NULL OR j.id < $4)"
            " ORDER BY j.id DESC LIMIT $5",
            status,
            kind,
            tenant_id,
            before_id,
            limit,
        )

    async def job(self, job_id: int) -> asyncpg.Record | None:
        return await self._db.fetchrow(
            "SELECT j.*, t.slug AS tenant_slug FROM control.jobs j"
            " LEFT JOIN control.tenants t ON t.id = j.tenant_id WHERE j.id = $1",
            job_id,
        )

    async def deployment(self, tenant_id: int) -> asyncpg.Record | None:
        return await self._db.fetchrow(
            "SELECT d.*, t.slug AS tenant_slug, t.desired_state FROM control.deployments d"
            " JOIN control.tenants t ON t.id = d.tenant_id WHERE d.tenant_id = $1",
            tenant_id,
        )

    async def deployments(
        self, *, status: str | None = None, after_tenant_id: int = 0, limit: int = 50
    ) -> list[asyncpg.Record]:
        """Deployments of live tenants in tenant order (keyset on ``tenant_id``)."""
        return await self._db.fetch(
            "SELECT d.*, t.slug AS tenant_slug, t.desired_state FROM control.deployments d"
            " JOIN control.tenants t ON t.id = d.tenant_id"
            " WHERE t.deleted_at IS NULL AND ($1::text IS NULL OR d.status = $1)"
            " AND d.tenant_id > $2 ORDER BY d.tenant_id LIMIT $3",
            status,
            after_tenant_id,
            limit,
        )

    async def subscriptions(self, tenant_id: int) -> list[asyncpg.Record]:
        return await self._db.fetch(
            "SELECT s.*, t.slug AS tenant_slug FROM control.subscriptions s"
            " JOIN control.tenants t ON t.id = s.tenant_id WHERE s.tenant_id = $1 ORDER BY s.id",
            tenant_id,
        )

    async def audit_log(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        """Audit entries newest first (keyset on ``id``)."""
        return await self._db.fetch(
            "SELECT * FROM control.audit_log WHERE ($1::text IS NULL OR actor = $1)"
            " AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3)"
            " AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
            actor,
            action,
            target,
            before_id,
            limit,
        )

    async def job_counts(self) -> dict[str, int]:
        rows = await self._db.fetch(
            "SELECT status, count(*) AS n FROM control.jobs GROUP BY status"
        )
        return {r["status"]: r["n"] for r in rows}

    async def tenant_counts(self) -> dict[str, int]:
        rows = await self._db.fetch(
            "SELECT status, count(*) AS n FROM control.tenants GROUP BY status"
        )
        return {r["status"]: r["n"] for r in rows}
