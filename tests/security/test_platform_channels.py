"""Tenant roles cannot steer the platform through its LISTEN/NOTIFY channels (issue 14, item 9).

PostgreSQL lets any role that can connect ``NOTIFY`` any channel. A tenant's own role (real
credentials, a real provisioned data plane) notifies ``botfleet_tenants`` and ``botfleet_jobs``: the
API's tenant cache keeps its entries and a deploy worker is not woken, while the platform's own
notifications still work. (A tenant can still ``LISTEN`` to them: that shows slugs and job ids,
nothing else; PostgreSQL has no privilege to stop it short of a separate database.)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from control_plane.tenant_cache import TenantCache, TenantChangeListener
from deploy_worker.worker import Worker
from fleet import jobs
from fleet.data_plane import install_platform
from fleet.db import connect, create_pool
from fleet.migrations import migrate_control
from kit.supervisor import Supervisor

MakeTenantDatabase = Callable[..., Awaitable[Any]]  # tests/security/conftest.py


async def _until(
    check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def listening(
    database_url: str,
) -> AsyncIterator[tuple[TenantCache[str], TenantChangeListener]]:
    """The API's tenant cache and its LISTEN connection, as ``create_app`` wires them."""
    cache: TenantCache[str] = TenantCache()
    listener = TenantChangeListener(cache=cache, connect=partial(connect, database_url), retry_s=60)
    await listener.start()
    try:
        yield cache, listener
    finally:
        await listener.stop()


async def test_a_tenant_cannot_flush_the_apis_tenant_cache(
    listening: tuple[TenantCache[str], TenantChangeListener],
    make_tenant_database: MakeTenantDatabase,
    pool: asyncpg.Pool,
) -> None:
    cache, listener = listening
    tenant = await make_tenant_database()
    cache.put("victim", "row", generation=cache.generation)
    cache.put("marker", "row", generation=cache.generation)
    attacker = await asyncpg.connect(tenant.dsn)
    try:
        assert await attacker.fetchval("SELECT current_user") == tenant.names.role
        await attacker.execute("NOTIFY botfleet_tenants, 'victim'")
        await attacker.execute("SELECT pg_notify('botfleet_tenants', '*')")
        await attacker.execute("BEGIN; NOTIFY botfleet_tenants, 'victim'; COMMIT")
        await _until(lambda: listener.ignored >= 3, "the tenant's notifications are looked at")
        assert cache.get("victim") == "row" and cache.get("marker") == "row"
        # The platform's own notification (here: the test's owner role) still works.
        await pool.execute("SELECT pg_notify('botfleet_tenants', 'marker')")
        await _until(lambda: cache.get("marker") is None, "the platform's notification is heard")
        assert cache.get("victim") == "row"
        # Once known, a tenant backend stays ignored (a burst is not a burst of look-ups heard).
        for _ in range(20):
            await attacker.execute("NOTIFY botfleet_tenants, 'victim'")
        await _until(lambda: listener.ignored >= 23, "the burst is ignored")
        assert cache.get("victim") == "row"
        assert cache.listening
    finally:
        await attacker.close()


class _Recorder:
    """A job handler that only records the jobs it ran."""

    def __init__(self) -> None:
        self.ran: list[int] = []

    async def run(self, job: Any) -> str:
        self.ran.append(int(job["id"]))
        return "done"

    async def failed(self, job: Any, error: str, *, final: bool, permanent: bool) -> None:
        pass


@pytest.fixture
async def worker_db(
    database_url: str, make_tenant_database: MakeTenantDatabase
) -> AsyncIterator[str]:
    """A throw-away database (a worker claims every job of its database), dropped first."""
    parts = urlsplit(database_url)
    name = "bfsec_" + secrets.token_hex(5)
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(parts._replace(path=f"/{name}"))
    pool = await create_pool(url, max_size=2)
    try:
        async with pool.acquire() as conn:
            await install_platform(conn)
        await migrate_control(pool)
    finally:
        await pool.close()
    yield url
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_a_tenant_cannot_wake_the_deploy_worker(
    worker_db: str, make_tenant_database: MakeTenantDatabase
) -> None:
    tenant = await make_tenant_database(database=worker_db)
    wpool = await create_pool(worker_db, min_size=1, max_size=5)
    recorder = _Recorder()
    worker = Worker(
        pool=wpool,
        handler=recorder,
        poll_s=60,  # no polling during the test: only a notification can wake it
        supervisor=Supervisor("worker-sec"),
    )
    running = asyncio.create_task(worker.run())
    try:
        await _until(lambda: worker._listener is not None, "the worker LISTENs")
        await asyncio.sleep(0.5)  # its first claim pass (on LISTEN) is over
        async with wpool.acquire() as conn, conn.transaction():
            # Queued without the trigger's notification (as if it had been missed).
            await conn.execute("SET LOCAL session_replication_role = replica")
            job = await jobs.enqueue(conn, kind="suspend", tenant_id=None)
        attacker = await asyncpg.connect(tenant.dsn)
        try:
            await attacker.execute("NOTIFY botfleet_jobs, '1'")
            await attacker.execute(f"SELECT pg_notify('botfleet_jobs', '{job['id']}')")
            await asyncio.sleep(1.5)
            assert recorder.ran == []  # not woken by the tenant
            await wpool.execute("SELECT pg_notify('botfleet_jobs', $1)", str(job["id"]))
            await _until(
                lambda: recorder.ran == [job["id"]], "the platform's notification wakes it"
            )
        finally:
            await attacker.close()
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        await wpool.close()
