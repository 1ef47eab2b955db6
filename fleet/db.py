"""PostgreSQL connection pools, with connection failures reported by host and port only."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg

from fleet.errors import ServiceUnavailable
from fleet.settings import describe_dsn

# What a repository runs its SQL on: a connection (inside the caller's transaction) or a pool.
Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool

_CONNECT_ERRORS = (
    OSError,
    socket.gaierror,
    TimeoutError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 10.0,
    **kwargs: Any,
) -> asyncpg.Pool:
    """Open a pool (JSON columns decoded to Python objects); raise :class:`ServiceUnavailable`
    naming ``host:port/db`` — never the password — when PostgreSQL cannot be reached."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            init=_init_connection,
            **kwargs,
        )
    except _CONNECT_ERRORS as exc:
        raise ServiceUnavailable(
            f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {_reason(exc)}"
        ) from exc
    assert pool is not None
    return pool


async def connect(dsn: str, *, timeout: float = 10.0, **kwargs: Any) -> asyncpg.Connection:
    """One connection, with the same error reporting as :func:`create_pool`."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout, **kwargs)
    except _CONNECT_ERRORS as exc:
        raise ServiceUnavailable(
            f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {_reason(exc)}"
        ) from exc
    await _init_connection(conn)
    return conn


@asynccontextmanager
async def session_lock(pool: asyncpg.Pool, key: int) -> AsyncIterator[bool]:
    """Try a session-level advisory lock on a connection of ``pool`` held for the block; yields
    whether it was taken (never waits), and releases it on exit."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            yield False
            return
        try:
            yield True
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "authentication failed (check the user and password)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
