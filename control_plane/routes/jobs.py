"""``/api/v1/jobs``: the deploy worker's queue; a dead job can be retried."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, status

from control_plane import render
from control_plane.deps import AdminKey, Jobs, ReaderKey, RequestId
from control_plane.endpoints import Cursor, Limit, resource_router
from control_plane.idempotency import Idempotent
from control_plane.pagination import decode_cursor, split_page
from control_plane.problems import problem_responses
from fleet.identifiers import SLUG_PATTERN
from schemas.api import JobKind, JobPublic, JobStatus, Page

router = resource_router("/jobs", tag="jobs")

JobId = Annotated[int, Path(ge=1, le=2**63 - 1, examples=[42])]


@router.get("", summary="List jobs (cursor pages, newest first)")
async def list_jobs(
    _key: ReaderKey,
    jobs: Jobs,
    status: Annotated[JobStatus | None, Query()] = None,
    kind: Annotated[JobKind | None, Query()] = None,
    tenant: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="Tenant slug")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[JobPublic]:
    before = decode_cursor(cursor, "jobs", int)
    rows = await jobs.list(
        status=status,
        kind=kind,
        tenant=tenant,
        before_id=before[0] if before else None,
        limit=limit + 1,
    )
    page, next_cursor = split_page(rows, limit=limit, listing="jobs", key=lambda r: (r["id"],))
    return Page(items=[render.job(row) for row in page], next_cursor=next_cursor)


@router.get("/{job_id}", summary="Show a job", responses=problem_responses(404))
async def get_job(_key: ReaderKey, job_id: JobId, jobs: Jobs) -> JobPublic:
    return render.job(await jobs.get(job_id))


@router.post(
    "/{job_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a dead job again with fresh attempts",
    responses=problem_responses(404, 409),
)
async def retry_job(
    key: AdminKey, _idempotent: Idempotent, job_id: JobId, jobs: Jobs, request_id: RequestId
) -> JobPublic:
    return render.job(await jobs.retry(job_id, actor=key.actor, request_id=request_id))
