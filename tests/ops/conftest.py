"""Fixtures of the operations tests: a throw-away database for processes that act on every row of
theirs (a worker claims every job, the lifecycle moves every subscription)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fleet.data_plane import install_platform
from fleet.db import create_pool
from fleet.migrations import migrate_control


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A database of this test's own (a worker claims every job of its database)."""
    parts = urlsplit(database_url)
    name = "bfo_" + secrets.token_hex(5)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    admin = await asyncpg.connect(admin_url)
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
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
