"""The durable job queue in ``control.jobs``.

Jobs are written in the same transaction as the state change that causes them (no dual write), claimed
with ``FOR UPDATE SKIP LOCKED`` under a lease, retried with exponential backoff and jitter, and parked
as ``dead`` with their last error after ``max_attempts``. A tenant never has two jobs running at once
(a partial unique index enforces it) and its jobs run in the order they were queued. Workers wake on
``LISTEN botfleet_jobs`` (a trigger notifies on insert) and poll as a fallback.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import asyncpg

from fleet.db import Executor
from fleet.errors import NotFoundError, ValidationError

JobKind = Literal["provision", "deprovision", "suspend", "resume", "redeploy"]
JOB_KINDS: tuple[str, ...] = ("provision", "deprovision", "suspend", "resume", "redeploy")
NOTIFY_CHANNEL = "botfleet_jobs"


async def enqueue(
    db: Executor,
    *,
    kind: str,
    tenant_id: int | None,
    payload: dict[str, Any] | None = None,
    request_id: str | None = None,
    max_attempts: int = 8,
) -> asyncpg.Record:
    """Queue a job; pass the caller's connection so it commits with the caller's state change.

    A job of the same kind already queued for the tenant is returned instead of a duplicate."""
    if kind not in JOB_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(JOB_KINDS)}")
    existing = await db.fetchrow(
        "SELECT * FROM control.jobs WHERE tenant_id = $1 AND kind = $2 AND status = 'queued'"
        " ORDER BY id DESC LIMIT 1",
        tenant_id,
        kind,
    )
    if existing is not None and tenant_id is not None:
        return existing
    row = await db.fetchrow(
        "INSERT INTO control.jobs (kind, tenant_id, payload, request_id, max_attempts)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        kind,
        tenant_id,
        payload or {},
        request_id,
        max_attempts,
    )
    assert row is not None
    return row


async def claim(
    pool: asyncpg.Pool, *, worker_id: str, lease_seconds: float
) -> asyncpg.Record | None:
    """Take the next runnable job, or None. Earlier jobs of a tenant go first, one at a time."""
    for _ in range(5):
        try:
            return await pool.fetchrow(
                "UPDATE control.jobs SET status = 'running', attempts = attempts + 1,"
                " locked_by = $1, locked_until = now() + make_interval(secs => $2),"
                " updated_at = now()"
                " WHERE id = ("
                "  SELECT j.id FROM control.jobs j"
                "  WHERE j.status = 'queued' AND j.run_after <= now()"
                "  AND NOT EXISTS (SELECT 1 FROM control.jobs r WHERE r.tenant_id = j.tenant_id"
                "                  AND (r.status = 'running'"
                "                       OR (r.status = 'queued' AND r.id < j.id)))"
                "  ORDER BY j.run_after, j.id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " RETURNING *",
                worker_id,
                float(lease_seconds),
            )
        except asyncpg.UniqueViolationError:
            # Another worker started a job of the same tenant between our check and our update.
            continue
    return None


async def extend_lease(pool: asyncpg.Pool, job_id: int, *, worker_id: str, seconds: float) -> bool:
    """Keep a long job's lease alive; False if the job is no longer ours."""
    status = await pool.execute(
        "UPDATE control.jobs SET locked_until = now() + make_interval(secs => $3)"
        " WHERE id = $1 AND locked_by = $2 AND status = 'running'",
        job_id,
        worker_id,
        float(seconds),
    )
    return status.endswith(" 1")


async def complete(db: Executor, job_id: int, *, worker_id: str | None = None) -> bool:
    """Mark a job done. With ``worker_id``, only while that worker still holds it (a worker whose
    lease expired must not overwrite the run of the worker that took the job over); returns
    whether the row changed."""
    status = await db.execute(
        "UPDATE control.jobs SET status = 'done', finished_at = now(), updated_at = now(),"
        " locked_by = NULL, locked_until = NULL, last_error = NULL WHERE id = $1"
        " AND ($2::text IS NULL OR (locked_by = $2 AND status = 'running'))",
        job_id,
        worker_id,
    )
    return status.endswith(" 1")


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter in its upper half: base*2^(n-1), capped, times 0.5-1."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * (0.5 + random.random() / 2)


async def fail(
    db: Executor,
    job: asyncpg.Record,
    error: str,
    *,
    retry: bool = True,
    worker_id: str | None = None,
) -> str:
    """Record a failure: back to the queue after a backoff, or ``dead`` when attempts are spent or
    the error is permanent. Returns the new status, or ``lost`` when ``worker_id`` is given and
    that worker no longer holds the job (its lease expired and another worker took it)."""
    dead = not retry or job["attempts"] >= job["max_attempts"]
    status = "dead" if dead else "queued"
    result = await db.execute(
        "UPDATE control.jobs SET status = $2, last_error = $3, updated_at = now(),"
        " run_after = now() + make_interval(secs => $4), locked_by = NULL, locked_until = NULL,"
        " finished_at = CASE WHEN $2 = 'dead' THEN now() END"
        " WHERE id = $1 AND ($5::text IS NULL OR (locked_by = $5 AND status = 'running'))",
        job["id"],
        status,
        error[:4000],
        0.0 if dead else backoff_seconds(job["attempts"]),
        worker_id,
    )
    return status if result.endswith(" 1") else "lost"


async def release(db: Executor, job_id: int, *, worker_id: str) -> bool:
    """Put a job this worker holds back in the queue now (a shutdown interrupted it); the attempt
    counts, like a crash would."""
    status = await db.execute(
        "UPDATE control.jobs SET status = 'queued', locked_by = NULL, locked_until = NULL,"
        " run_after = now(), updated_at = now(),"
        " last_error = coalesce(last_error, 'interrupted by a worker shutdown')"
        " WHERE id = $1 AND locked_by = $2 AND status = 'running'",
        job_id,
        worker_id,
    )
    return status.endswith(" 1")


async def recover_expired(db: Executor) -> int:
    """Return jobs whose worker died (lease expired) to the queue; the attempt still counts."""
    status = await db.execute(
        "UPDATE control.jobs SET status = 'queued', locked_by = NULL, locked_until = NULL,"
        " last_error = coalesce(last_error, 'worker lease expired'), updated_at = now()"
        " WHERE status = 'running' AND locked_until < now()"
    )
    return int(status.split()[-1])


async def retry(db: Executor, job_id: int) -> asyncpg.Record:
    """Put a dead job back in the queue with fresh attempts."""
    row = await db.fetchrow(
        "UPDATE control.jobs SET status = 'queued', attempts = 0, run_after = now(),"
        " finished_at = NULL, updated_at = now() WHERE id = $1 AND status = 'dead' RETURNING *",
        job_id,
    )
    if row is None:
        exists = await db.fetchval("SELECT status FROM control.jobs WHERE id = $1", job_id)
        if exists is None:
            raise NotFoundError(f"job {job_id} does not exist")
        raise ValidationError("job", f"job {job_id} is {exists}; only dead jobs can be retried")
    return row


async def get(db: Executor, job_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM control.jobs WHERE id = $1", job_id)


async def outcomes(db: Executor, job_ids: list[int]) -> list[asyncpg.Record]:
    """``id``, ``status`` and ``last_error`` of these jobs (those that exist)."""
    return await db.fetch(
        "SELECT id, status, last_error FROM control.jobs WHERE id = ANY($1::bigint[])", job_ids
    )


async def list_jobs(
    db: Executor,
    *,
    status: str | None = None,
    tenant_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[asyncpg.Record]:
    """Newest first, for the CLI and the API (cursor: ``before_id``)."""
    return await db.fetch(
        "SELECT * FROM control.jobs WHERE ($1::text IS NULL OR status = $1)"
        " AND ($2::bigint IS NULL OR tenant_id = $2) AND ($3::bigint IS NULL OR id < $3)"
        " ORDER BY id DESC LIMIT $4",
        status,
        tenant_id,
        before_id,
        limit,
    )
