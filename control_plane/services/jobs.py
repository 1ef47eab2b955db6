"""Deploy jobs as admins see them: listing, one job, and retrying a dead one."""

from __future__ import annotations

import asyncpg

from fleet import jobs
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.admin_views import AdminViews
from fleet.repositories.tenants import TenantRepository


class JobAdminService:
    """Reads jobs with their tenant's slug; puts dead jobs back in the queue."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        tenant: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        tenant_id = None
        if tenant is not None:
            row = await TenantRepository(self._pool).get(tenant)
            if row is None:
                return []
            tenant_id = row.id
        return await AdminViews(self._pool).jobs(
            status=status, kind=kind, tenant_id=tenant_id, before_id=before_id, limit=limit
        )

    async def get(self, job_id: int) -> asyncpg.Record:
        job = await AdminViews(self._pool).job(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} does not exist")
        return job

    async def retry(self, job_id: int, *, actor: str, request_id: str | None) -> asyncpg.Record:
        """Queue a dead job again with fresh attempts; any other state is a conflict."""
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                await jobs.retry(conn, job_id)
            except ValidationError as exc:
                raise ConflictError("status", exc.message) from exc
            await audit.record(
                conn,
                actor=actor,
                action="job.retry",
                target=f"job:{job_id}",
                request_id=request_id,
            )
            job = await AdminViews(conn).job(job_id)
        assert job is not None
        return job
