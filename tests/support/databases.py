"""Throw-away databases of one test, made cheaply (tests whose processes act on every row of their
database: a worker claims every job, the reconciler scans every tenant).

Three costs of the naive way, each paid per test, are taken out:

* ``install_platform`` and the control migrations run once per session (per xdist worker) into a
  template database; a test's database is ``CREATE DATABASE ... TEMPLATE`` of it: the same catalog,
  copied block by block instead of replayed statement by statement.
* Test databases commit with ``synchronous_commit = off`` (a per-database default, see
  :func:`relaxed_commits`): a commit does not wait for its WAL flush. Nothing a test observes changes
  (every committed row is visible at once, as before); only a crash of the server could lose the
  last commits, and a test database is thrown away anyway.
* ``DROP DATABASE`` waits for a checkpoint of the whole server (seconds on a busy shared one). The
  drop, and the cluster-wide roles the test left, are handed to one background thread of the session
  (:func:`drop_later`) and the test ends at once; :func:`finish_drops` waits for them at the end of
  the session, tries a failed one once more and fails the session loudly with every drop that
  failed twice.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from fleet.data_plane import install_platform
from fleet.db import create_pool
from fleet.migrations import migrate_control


def admin_url_of(url: str) -> str:
    """The URL of the ``postgres`` database on ``url``'s server (to create and drop databases)."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def url_of(url: str, name: str) -> str:
    """``url`` pointed at database ``name``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def relaxed_commits(admin: asyncpg.Connection, name: str) -> None:
    """Sessions of database ``name`` commit without waiting for the WAL flush (its default; a
    database copied from a template does not inherit it)."""
    async with admin.transaction():
        # xdist workers set it on the shared test database at once: one pg_database row, one at
        # a time ("tuple concurrently updated" otherwise), and only when not set yet.
        await admin.execute(
            "SELECT pg_advisory_xact_lock(hashtext('botfleet tests: relaxed commits'))"
        )
        if not await admin.fetchval(
            "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = $1 AND s.setrole = 0"
            " AND 'synchronous_commit=off' = ANY(s.setconfig)",
            name,
        ):
            await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')


async def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (a copy of ``template`` when given) with relaxed commits; its URL."""
    admin = await asyncpg.connect(admin_url_of(server_url))
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
        await relaxed_commits(admin, name)
    finally:
        await admin.close()
    return url_of(server_url, name)


class ControlTemplate:
    """A database with the platform installed and control migrated, made on first use and copied
    for each test that asks (:meth:`copy`); one per session (per xdist worker)."""

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._name: str | None = None

    async def _ensure(self) -> str:
        # The tests of one process run one at a time (each on its own event loop): no lock.
        if self._name is None:
            name = "bft_" + secrets.token_hex(5)
            url = await create_database(self._server_url, name)
            pool = await create_pool(url, max_size=2)
            try:
                async with pool.acquire() as conn:
                    await install_platform(conn)
                await migrate_control(pool)
            finally:
                await pool.close()  # a template may have no session while it is copied
            self._name = name
        return self._name

    async def copy(self, name: str) -> str:
        """A new database ``name``, migrated as the template is; its URL."""
        return await create_database(self._server_url, name, template=await self._ensure())

    def close(self) -> None:
        """Drop the template (in the background, with the tests' databases)."""
        if self._name is not None:
            drop_later(self._server_url, self._name)
            self._name = None


async def _drop(server_url: str, name: str, role_prefix: str | None) -> None:
    if role_prefix is not None:
        # The test's roles own objects in this database only: dropped there, then the roles.
        conn = await asyncpg.connect(url_of(server_url, name))
        try:
            for (role,) in await conn.fetch(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", role_prefix
            ):
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    role,
                )
                await conn.execute(f'DROP OWNED BY "{role}"')
                await conn.execute(f'DROP ROLE "{role}"')
        finally:
            await conn.close()
    admin = await asyncpg.connect(admin_url_of(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


_executor: ThreadPoolExecutor | None = None
_pending: list[tuple[tuple[str, str, str | None], Future[None]]] = []
_guard = threading.Lock()


def drop_later(server_url: str, name: str, *, role_prefix: str | None = None) -> None:
    """Drop database ``name`` (and first, in it, every role starting with ``role_prefix``) on the
    session's background thread; :func:`finish_drops` waits for it."""
    global _executor
    with _guard:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-databases")
        future = _executor.submit(asyncio.run, _drop(server_url, name, role_prefix))
        _pending.append(((server_url, name, role_prefix), future))


def finish_drops() -> list[str]:
    """Wait for every drop handed over so far; a drop that failed in the background (a test of
    the moment may have patched the process's sockets) is tried once more here, with no test
    running; returns ``name: error`` of each that failed again."""
    global _executor
    with _guard:
        pending = list(_pending)
        _pending.clear()
        executor, _executor = _executor, None
    failed = []
    for (server_url, name, role_prefix), future in pending:
        if future.exception() is None:
            continue
        try:
            asyncio.run(_drop(server_url, name, role_prefix))
        except Exception as error:  # reported by the caller, which fails the session
            failed.append(f"{name}: {type(error).__name__}: {error}")
    if executor is not None:
        executor.shutdown(wait=True)
    return failed
