"""Tenant data plane: isolation by privileges (PostgreSQL) and ACL (Redis), idempotence, teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ResponseError

from fleet.data_plane import (
    TenantNames,
    drop_database_plane,
    drop_redis_user,
    ensure_database_plane,
    ensure_redis_user,
    redis_user_exists,
)
from fleet.identifiers import quote_ident
from fleet.migrations import Migration

TABLE = Migration(
    "0001_things",
    "CREATE TABLE things (id serial PRIMARY KEY, staff int NOT NULL, during tstzrange NOT NULL,"
    " EXCLUDE USING gist (staff WITH =, during WITH &&));",
    "c0ffee",
)


def tenant_redis(redis_url: str, names: TenantNames, password: str) -> Redis:
    parts = urlsplit(redis_url)
    return Redis(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        username=names.redis_user,
        password=password,
    )


@pytest.fixture
async def two_tenants(
    pool: asyncpg.Pool, redis: Redis, role_prefix: str
) -> AsyncIterator[tuple[TenantNames, TenantNames]]:
    a = TenantNames.of("alpha", role_prefix)
    b = TenantNames.of("bravo", role_prefix)
    async with pool.acquire() as conn:
        for names in (a, b):
            await ensure_database_plane(conn, names, password="pw", migrations=[TABLE])
    for names in (a, b):
        await ensure_redis_user(redis, names, password=f"pw-{names.slug}")
    yield a, b
    async with pool.acquire() as conn:
        for names in (a, b):
            await drop_database_plane(conn, names)
    for names in (a, b):
        await drop_redis_user(redis, names)


async def test_tenant_role_sees_only_its_own_schema(
    database_url: str, two_tenants: tuple[TenantNames, TenantNames]
) -> None:
    a, b = two_tenants
    conn = await asyncpg.connect(database_url, user=a.role, password="pw")
    try:
        # search_path is the role's default: unqualified names are its own tables
        assert await conn.fetchval("SHOW search_path") == a.schema
        await conn.execute(
            "INSERT INTO things (staff, during) VALUES (1, '[2030-01-01 10:00Z, 2030-01-01 11:00Z)')"
        )
        with pytest.raises(asyncpg.ExclusionViolationError):
            await conn.execute(
                "INSERT INTO things (staff, during) VALUES (1, '[2030-01-01 10:30Z, 2030-01-01 11:30Z)')"
            )
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match="permission denied for schema"
        ):
            await conn.fetch(f"SELECT * FROM {quote_ident(b.schema)}.things")
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match="permission denied for schema"
        ):
            await conn.execute(
                f"INSERT INTO {quote_ident(b.schema)}.things (staff, during) VALUES (1, 'empty')"
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM control.tenants")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM schema_migrations")
    finally:
        await conn.close()


async def test_tenant_redis_user_is_confined_to_its_prefix(
    redis_url: str, redis: Redis, two_tenants: tuple[TenantNames, TenantNames]
) -> None:
    a, b = two_tenants
    await redis.set(f"{b.redis_prefix}secret", "b-data")
    client = tenant_redis(redis_url, a, "pw-alpha")
    try:
        await client.set(f"{a.redis_prefix}fsm", "ok")
        assert await client.get(f"{a.redis_prefix}fsm") == b"ok"
        await client.publish(f"{a.redis_prefix}events", "hi")
        for denied in (
            client.get(f"{b.redis_prefix}secret"),
            client.set(f"{b.redis_prefix}secret", "x"),
            client.get("bf:platform"),
            client.keys("*"),
            client.scan(0),
            client.randomkey(),
            client.flushall(),
            client.flushdb(),
            client.execute_command("SWAPDB", 0, 1),
            client.config_get("*"),
            client.publish(f"{b.redis_prefix}events", "x"),
        ):
            with pytest.raises((NoPermissionError, ResponseError)):
                await denied
    finally:
        await client.aclose()
    assert await redis.get(f"{b.redis_prefix}secret") == b"b-data"


async def test_data_plane_converges_when_rerun_after_a_crash(
    pool: asyncpg.Pool, redis: Redis, database_url: str, role_prefix: str
) -> None:
    names = TenantNames.of("charlie", role_prefix)
    try:
        async with pool.acquire() as conn:
            # a crash half-way: role created, nothing else
            await conn.execute(f"CREATE ROLE {quote_ident(names.role)} LOGIN")
            assert await ensure_database_plane(conn, names, password="pw", migrations=[TABLE]) == [
                "0001_things"
            ]
            assert await ensure_database_plane(conn, names, password="pw", migrations=[TABLE]) == []
        await ensure_redis_user(redis, names, password="one")
        await ensure_redis_user(redis, names, password="one")
        tenant = await asyncpg.connect(database_url, user=names.role, password="pw")
        try:
            await tenant.execute("INSERT INTO things (staff, during) VALUES (2, 'empty')")
        finally:
            await tenant.close()
    finally:
        async with pool.acquire() as conn:
            await drop_database_plane(conn, names)
        await drop_redis_user(redis, names)


async def test_teardown_removes_everything(
    pool: asyncpg.Pool, redis: Redis, role_prefix: str
) -> None:
    names = TenantNames.of("delta", role_prefix)
    async with pool.acquire() as conn:
        await ensure_database_plane(conn, names, password="pw", migrations=[TABLE])
    await ensure_redis_user(redis, names, password="pw")
    await redis.set(f"{names.redis_prefix}a", 1)
    await redis.set(f"{names.redis_prefix}b", 2)

    async with pool.acquire() as conn:
        await drop_database_plane(conn, names)
        await drop_database_plane(conn, names)  # idempotent
        assert not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", names.role)
        assert not await conn.fetchval(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1", names.schema
        )
    assert await drop_redis_user(redis, names) == 2
    assert not await redis_user_exists(redis, names)
    assert await redis.exists(f"{names.redis_prefix}a") == 0
