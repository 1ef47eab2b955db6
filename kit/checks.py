"""Readiness checks shared by the platform's processes: PostgreSQL answers, Redis answers, the
supervised loops are healthy. Each is bounded in time and says why it failed, without secrets (only
the exception's type, never a DSN)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit.supervisor import Supervisor


@dataclass(frozen=True)
class Check:
    """The outcome of one readiness check."""

    ok: bool
    detail: str


Probe = Callable[[], Awaitable[Check]]


def postgres_probe(pool: asyncpg.Pool, *, timeout_s: float = 2.0) -> Probe:
    """``SELECT 1`` through ``pool`` within ``timeout_s``."""

    async def probe() -> Check:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                await pool.fetchval("SELECT 1")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            return Check(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return Check(ok=True, detail=f"answered in {_ms(started)} ms")

    return probe


def redis_probe(redis: Redis, *, timeout_s: float = 2.0) -> Probe:
    """``PING`` within ``timeout_s``."""

    async def probe() -> Check:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                await redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            return Check(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return Check(ok=True, detail=f"answered in {_ms(started)} ms")

    return probe


def loops_check(supervisors: Iterable[Supervisor]) -> Check:
    """Every supervised loop of the process is neither failing nor stale; the detail names the
    loops that are, with their last error."""
    supervisors = list(supervisors)
    bad = [f"{s.process}/{problem}" for s in supervisors for problem in s.unhealthy()]
    if bad:
        return Check(ok=False, detail="; ".join(bad)[:1000])
    count = sum(1 for s in supervisors for _ in s)
    return Check(ok=True, detail=f"{count} background loops healthy")


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f}"
