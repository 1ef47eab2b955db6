"""Shared fixtures: a real PostgreSQL database and Redis server, unique names per test.

``BOTFLEET_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/botfleet_test``, created
when missing) and ``BOTFLEET_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) point at the servers.
Every test uses its own slugs/schemas/prefixes, so tests can run in parallel (pytest-xdist) and leave
nothing behind.
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedPgBouncer
from fleet.data_plane import install_platform
from fleet.db import create_pool
from fleet.migrations import migrate_control
from tests.support.databases import ControlTemplate, finish_drops, relaxed_commits
from tests.support.pgbouncer import MISSING as PGBOUNCER_MISSING
from tests.support.pgbouncer import Pooler, running_pooler

TEST_DATABASE_URL = os.environ.get(
    "BOTFLEET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/botfleet_test"
)
TEST_REDIS_URL = os.environ.get("BOTFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# The slow kinds of test, marked by where they live or what they use, so `make test-fast` can leave
# them out (`-m "not (docker or e2e or faults or browser or slow)"`); `make test` runs everything.
_MARKED_FOLDERS = {"e2e": "e2e", "faults": "faults"}
_MARKED_FIXTURES = {"browser": "browser", "docker_engine": "docker", "swarm_engine": "docker"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.parent.name
        if folder in _MARKED_FOLDERS:
            item.add_marker(_MARKED_FOLDERS[folder])
        for fixture, marker in _MARKED_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """No garbage collection while the tests are collected (in a process that collects: not an
    xdist controller): every full collection walked the modules imported so far again, eight times
    for ~1 s of CPU per worker. :func:`pytest_collection_finish` turns it back on."""
    controller = config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")
    if not controller:
        gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (aiogram's and pydantic's models, fastapi, the platform: most of a
    worker's heap) lives until the worker exits, yet each full collection of the garbage collector
    walked all of it again (~0.2 s of CPU each; five more at the session's end, where pytest looks for
    unraisable exceptions). Frozen, as the fork server does with its preloads, the collector walks
    only what the tests make."""
    gc.freeze()
    gc.enable()


async def _ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # xdist workers race to create it on a first run: the loser sees either error.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{name}"')
        await relaxed_commits(conn, name)  # tests/support/databases.py says why
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The test database, created if missing, with the platform installed and control migrated."""
    import asyncio

    async def prepare() -> None:
        await _ensure_database(TEST_DATABASE_URL)
        pool = await create_pool(TEST_DATABASE_URL, max_size=2)
        try:
            async with pool.acquire() as conn:
                await install_platform(conn)
            await migrate_control(pool)
        finally:
            await pool.close()

    asyncio.run(prepare())
    yield TEST_DATABASE_URL


@pytest.fixture(scope="session", autouse=True)
def _deferred_drops() -> Iterator[None]:
    """Waits at the session's end for the databases dropped in the background
    (tests/support/databases.py) and fails loudly naming each drop that failed."""
    yield
    failed = finish_drops()
    if failed:
        raise AssertionError("test databases not dropped:\n" + "\n".join(failed))


@pytest.fixture(scope="session")
def control_template(database_url: str, _deferred_drops: None) -> Iterator[ControlTemplate]:
    """Copies of one migrated control database for tests that need a database of their own."""
    template = ControlTemplate(database_url)
    yield template
    template.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh pool on the test database (owner role), closed after the test."""
    pool = await create_pool(database_url, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def pgbouncer(database_url: str) -> AsyncIterator[Pooler]:
    """A real PgBouncer in transaction mode in front of the test database (tests/support/pgbouncer.py);
    skips, saying why, only when the binary is not installed."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(PGBOUNCER_MISSING)
    async with running_pooler(database_url) as pooler:
        yield pooler


@pytest.fixture
def unique_slug() -> str:
    """A slug no other test (or parallel worker) uses."""
    return "t" + secrets.token_hex(6)


@pytest.fixture
def role_prefix() -> str:
    """A role/schema prefix of this test alone, so catalog-wide scans see only its schemas."""
    return "x" + secrets.token_hex(4) + "_"
