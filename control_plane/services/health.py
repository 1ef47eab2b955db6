"""Liveness and readiness: PostgreSQL and Redis answer, the control schema has every migration this
code ships (an API process running ahead of its migrations must not take traffic), and the process's
supervised background loops are healthy (a tenant cache listener or purge that keeps crashing, or,
under ``botfleet up``, a worker/lifecycle/sales-bot loop, must not go unnoticed)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from fleet.migrations import Migration, recorded_checksums
from kit.checks import loops_check
from kit.supervisor import Supervisor
from schemas.api import CheckResult, Readiness


class HealthService:
    """Runs the readiness checks, each bounded by ``timeout_s``."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        migrations: list[Migration],
        timeout_s: float = 2.0,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._migrations = migrations
        self._timeout_s = timeout_s
        self._supervisors: list[Supervisor] = []

    def watch(self, *supervisors: Supervisor) -> None:
        """Include these supervisors' loops in readiness (check ``loops``)."""
        self._supervisors.extend(s for s in supervisors if s not in self._supervisors)

    async def readiness(self) -> Readiness:
        postgres, redis = await asyncio.gather(self._check_postgres(), self._check_redis())
        migrations = (
            await self._check_migrations()
            if postgres.ok
            else CheckResult(ok=False, detail="not checked: PostgreSQL is unreachable")
        )
        checks = {"postgres": postgres, "redis": redis, "migrations": migrations}
        if self._supervisors:
            loops = loops_check(self._supervisors)
            checks["loops"] = CheckResult(ok=loops.ok, detail=loops.detail)
        ready = all(check.ok for check in checks.values())
        return Readiness(status="ready" if ready else "not_ready", checks=checks)

    async def _check_postgres(self) -> CheckResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._pool.fetchval("SELECT 1")
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            return CheckResult(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return CheckResult(ok=True, detail=f"answered in {_ms(started)} ms")

    async def _check_redis(self) -> CheckResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            return CheckResult(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return CheckResult(ok=True, detail=f"answered in {_ms(started)} ms")

    async def _check_migrations(self) -> CheckResult:
        try:
            async with asyncio.timeout(self._timeout_s):
                applied = await recorded_checksums(self._pool)
        except asyncpg.UndefinedTableError:
            return CheckResult(
                ok=False, detail="control schema not migrated; run `botfleet migrate`"
            )
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            return CheckResult(ok=False, detail=f"cannot read migrations: {type(exc).__name__}")
        missing = [m.version for m in self._migrations if m.version not in applied]
        edited = [
            m.version
            for m in self._migrations
            if m.version in applied and applied[m.version] != m.checksum
        ]
        if missing:
            return CheckResult(
                ok=False, detail=f"pending: {', '.join(missing)}; run `botfleet migrate`"
            )
        if edited:
            return CheckResult(
                ok=False, detail=f"applied files differ from this code: {', '.join(edited)}"
            )
        return CheckResult(ok=True, detail=f"{len(self._migrations)} control migrations applied")


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f}"
