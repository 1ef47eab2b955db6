"""Helpers shared by the deploy worker tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from redis.asyncio import Redis

from deploy_worker.runtimes.base import Runtime
from deploy_worker.service import WorkerParts, open_worker
from fleet.repositories.tenants import Tenant, TenantRepository
from fleet.secrets import SecretBox
from fleet.settings import Settings


async def wait_until(
    predicate: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "",
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running_worker(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    redis: Redis,
    secrets: SecretBox,
    runtime: Runtime,
    worker_id: str | None = None,
) -> AsyncIterator[WorkerParts]:
    """A worker running in the background for the duration of the block."""
    async with open_worker(
        settings, pool=pool, redis=redis, secrets=secrets, runtime=runtime, worker_id=worker_id
    ) as parts:
        task = asyncio.create_task(parts.worker.run())
        try:
            yield parts
        finally:
            parts.worker.stop()
            await asyncio.wait_for(task, 60)


async def tenant_row(pool: asyncpg.Pool, tenant_id: int) -> Tenant:
    row = await TenantRepository(pool).get_by_id(tenant_id)
    assert row is not None
    return row


async def wait_status(
    pool: asyncpg.Pool,
    tenant_id: int,
    status: str,
    *,
    timeout: float = 60.0,
    runtime: Runtime | None = None,
) -> Tenant:
    """Wait until the tenant has ``status``; the failure message shows its status and jobs."""
    deadline = time.monotonic() + timeout
    while True:
        row = await tenant_row(pool, tenant_id)
        if row.status == status:
            return row
        if time.monotonic() > deadline:
            jobs = await pool.fetch(
                "SELECT kind, status, attempts, last_error FROM control.jobs WHERE tenant_id = $1",
                tenant_id,
            )
            logs = await runtime.logs(row.slug, tail=40) if runtime is not None else ""
            raise AssertionError(
                f"tenant {row.slug} is {row.status} ({row.status_reason}), not {status}; "
                f"jobs: {[dict(j) for j in jobs]}\nbot logs:\n{logs}"
            )
        await asyncio.sleep(0.1)
