"""What a tenant's PostgreSQL role may take of the shared server (issue 14, item 9), attacked with the
tenant's real credentials: a long statement is cancelled, an idle transaction is ended, connections
beyond the limit are refused, and setting the timeouts away in the session does not escape the
platform's watchdog. Limits are re-applied (and a tenant's own ``ALTER ROLE ... SET`` undone) on
every provision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from fleet.data_plane import (
    DEFAULT_ROLE_LIMITS,
    TenantRoleLimits,
    ensure_database_plane,
    terminate_runaway_backends,
)

MakeTenantDatabase = Callable[..., Awaitable[Any]]  # tests/security/conftest.py

SMALL = TenantRoleLimits(
    statement_timeout_ms=500,
    idle_in_transaction_timeout_ms=500,
    temp_file_limit_kb=1024,
    connection_limit=3,
)


async def test_the_defaults_fit_the_tenant_bot() -> None:
    from tenant_bot.resources import DB_POOL_MAX

    # a redeploy overlaps two bots, each with its pool and the background work's one connection
    assert DEFAULT_ROLE_LIMITS.connection_limit >= 2 * (DB_POOL_MAX + 1)
    assert DEFAULT_ROLE_LIMITS.statement_timeout_ms < 30_000  # the bot's own command timeout


async def test_a_long_statement_is_cancelled(make_tenant_database: MakeTenantDatabase) -> None:
    tenant = await make_tenant_database(limits=SMALL)
    conn = await asyncpg.connect(tenant.dsn)
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "500ms"
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
            await conn.execute("SELECT pg_sleep(5)")
        assert await conn.fetchval("SELECT 1") == 1  # the connection itself survives
    finally:
        await conn.close()


async def test_an_idle_transaction_is_terminated(make_tenant_database: MakeTenantDatabase) -> None:
    tenant = await make_tenant_database(limits=SMALL)
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.execute("BEGIN")
        await conn.execute("SELECT count(*) FROM bookings")  # holds a snapshot and a lock
        await asyncio.sleep(1.5)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()


async def test_connections_beyond_the_limit_are_refused(
    make_tenant_database: MakeTenantDatabase,
) -> None:
    tenant = await make_tenant_database(limits=SMALL)
    conns = [await asyncpg.connect(tenant.dsn) for _ in range(SMALL.connection_limit)]
    try:
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await asyncpg.connect(tenant.dsn)
    finally:
        for conn in conns:
            await conn.close()


async def test_temp_files_are_capped(make_tenant_database: MakeTenantDatabase) -> None:
    """A superuser platform (as here) sets ``temp_file_limit``; the tenant cannot lift it."""
    tenant = await make_tenant_database(limits=SMALL)
    conn = await asyncpg.connect(tenant.dsn)
    try:
        assert await conn.fetchval("SHOW temp_file_limit") == "1MB"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET temp_file_limit = -1")
        await conn.execute("SET work_mem = '64kB'")
        with pytest.raises(asyncpg.ConfigurationLimitExceededError):
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT g FROM generate_series(1, 2000000) g ORDER BY g DESC) s"
            )
    finally:
        await conn.close()


async def test_a_tenant_that_sets_its_timeouts_away_is_still_stopped(
    make_tenant_database: MakeTenantDatabase, database_url: str, role_prefix: str
) -> None:
    tenant = await make_tenant_database(limits=SMALL)
    runaway = await asyncpg.connect(tenant.dsn)
    idle = await asyncpg.connect(tenant.dsn)
    platform = await asyncpg.connect(database_url)
    try:
        await runaway.execute("SET statement_timeout = 0")  # a USERSET setting: allowed
        await idle.execute("SET idle_in_transaction_session_timeout = 0")
        await idle.execute("BEGIN")
        sleeping = asyncio.create_task(runaway.execute("SELECT pg_sleep(30)"))
        await asyncio.sleep(1.0)
        killed = await terminate_runaway_backends(platform, role_prefix, SMALL, grace_ms=0)
        assert {pid for _, pid in killed} == {runaway.get_server_pid(), idle.get_server_pid()}
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await asyncio.wait_for(sleeping, 10)
        # The platform's own sessions are never touched.
        assert platform.get_server_pid() not in {pid for _, pid in killed}
    finally:
        runaway.terminate()
        idle.terminate()
        await platform.close()


async def test_limits_are_reapplied_and_a_tenants_own_settings_undone(
    make_tenant_database: MakeTenantDatabase, database_url: str
) -> None:
    tenant = await make_tenant_database(limits=SMALL)
    conn = await asyncpg.connect(tenant.dsn)
    try:
        # An ordinary role may set its own defaults, for the database too (which win).
        await conn.execute(f'ALTER ROLE "{tenant.names.role}" SET statement_timeout = 0')
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(
            f'ALTER ROLE "{tenant.names.role}" IN DATABASE "{database}" SET statement_timeout = 0'
        )
    finally:
        await conn.close()
    platform = await asyncpg.connect(database_url)
    try:
        # An earlier version's role: CONNECTION LIMIT 20 and no timeouts (what provisioning finds).
        await platform.execute(f'ALTER ROLE "{tenant.names.role}" CONNECTION LIMIT 20')
        await ensure_database_plane(platform, tenant.names, password=tenant.password, limits=SMALL)
        assert (
            await platform.fetchval(
                "SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", tenant.names.role
            )
            == SMALL.connection_limit
        )
    finally:
        await platform.close()
    conn = await asyncpg.connect(tenant.dsn)
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "500ms"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "500ms"
        assert await conn.fetchval("SHOW search_path") == tenant.names.schema
    finally:
        await conn.close()


async def test_a_non_superuser_platform_sets_what_it_may(
    make_tenant_database: MakeTenantDatabase, database_url: str, role_prefix: str
) -> None:
    """``temp_file_limit`` needs a superuser (or ``GRANT SET ON PARAMETER``): without either, the
    other limits are still applied and provisioning goes on."""
    from fleet.data_plane import apply_role_limits

    tenant = await make_tenant_database()
    owner = f"{role_prefix}platform"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE ROLE \"{owner}\" LOGIN CREATEROLE PASSWORD 'pw'")
        try:
            conn = await asyncpg.connect(database_url, user=owner, password="pw")
            try:
                async with conn.transaction():
                    await apply_role_limits(conn, tenant.names.role, SMALL)
            finally:
                await conn.close()
            settings = await admin.fetchval(
                "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s"
                " JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0",
                tenant.names.role,
            )
            assert "statement_timeout=500" in settings
            assert "idle_in_transaction_session_timeout=500" in settings
        finally:
            await admin.execute(f'DROP ROLE "{owner}"')
    finally:
        await admin.close()
