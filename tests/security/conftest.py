"""Fixtures of the security suite: real tenant data planes whose credentials the tests use to attack.

Every tenant gets a unique slug and the test's own role prefix, and is dropped afterwards; nothing
else on the shared servers is touched.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from fleet.data_plane import (
    TenantNames,
    TenantRoleLimits,
    drop_database_plane,
    ensure_database_plane,
)


@dataclass(frozen=True)
class TenantDatabase:
    """A provisioned tenant: its names and the connection string of its own role."""

    names: TenantNames
    password: str
    dsn: str


def tenant_dsn(database_url: str, role: str, password: str) -> str:
    parts = urlsplit(database_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


MakeTenantDatabase = Callable[..., Awaitable[TenantDatabase]]


@pytest.fixture
async def make_tenant_database(
    database_url: str, role_prefix: str
) -> AsyncIterator[MakeTenantDatabase]:
    """Provision tenant data planes (role, schema, tenant migrations, limits) in ``database_url``
    with the test's role prefix; each is dropped after the test."""
    made: list[TenantNames] = []

    async def make(
        *, limits: TenantRoleLimits | None = None, database: str | None = None
    ) -> TenantDatabase:
        url = database or database_url
        names = TenantNames.of("t" + secrets.token_hex(6), role_prefix)
        password = secrets.token_urlsafe(18)
        conn = await asyncpg.connect(url)
        try:
            kwargs = {"limits": limits} if limits is not None else {}
            await ensure_database_plane(conn, names, password=password, **kwargs)
        finally:
            await conn.close()
        made.append(names)
        return TenantDatabase(names, password, tenant_dsn(url, names.role, password))

    try:
        yield make
    finally:
        conn = await asyncpg.connect(database_url)
        try:
            for names in made:
                await drop_database_plane(conn, names)
        finally:
            await conn.close()
