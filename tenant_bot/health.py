"""The tenant bot's health: what its heartbeat carries, and the container health check that reads it.

A bot is healthy while none of its supervised loops (background work, heartbeat) is failing (crashed
several times in a row) or stuck (no pass for longer than its ``stale_after``). Messages set aside
and passing delivery failures are reported, not judged: a customer who blocked the bot does not make
the bot sick.

``python -m tenant_bot --check-health`` reads the heartbeat with the bot's own runtime contract
(``BOTFLEET_TENANT_*``, already in the container's environment) and exits 0 when it is present and
healthy, 1 when it is missing or unhealthy (the reason on stderr), 2 for an invalid contract — a
Docker ``HEALTHCHECK`` command.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit.supervisor import Supervisor
from schemas.runtime import RuntimeContractError, TenantRuntime

if TYPE_CHECKING:  # the health check runs every few seconds: it must not import aiogram (~6 s)
    from tenant_bot.booking.db import StorageOutages
    from tenant_bot.delivery import DeliveryTally

CHECK_TIMEOUT_SECONDS = 5.0


def snapshot(
    supervisor: Supervisor, tally: DeliveryTally, outages: StorageOutages | None = None
) -> dict[str, Any]:
    """The health the heartbeat carries (small: it is written every few seconds).
    ``storage_unavailable`` counts requests that found the database away, by cause (``database``:
    PostgreSQL itself, ``pooler``: PgBouncer said so, ``timeout``: the bot's own wait ran out); like
    delivery failures it is reported, not judged: a database restart does not make the bot sick."""
    report = supervisor.report()
    return {
        "healthy": supervisor.healthy,
        "unhealthy": supervisor.unhealthy(),
        "loop_restarts": {name: status["restarts"] for name, status in report.items()},
        "set_aside": dict(tally.failed),
        "deferred": dict(tally.retried),
        "storage_unavailable": outages.snapshot() if outages is not None else {},
    }


async def read_heartbeat(runtime: TenantRuntime) -> dict[str, Any] | None:
    """The heartbeat's value, or None when the key is missing."""
    redis = Redis.from_url(
        runtime.redis_url.get_secret_value(),
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        raw = await redis.get(runtime.heartbeat_key)
    finally:
        await redis.aclose()
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"healthy": False, "unhealthy": ["bad value"]}


def verdict(value: dict[str, Any] | None) -> tuple[int, str]:
    """(exit code, one line) for a heartbeat value."""
    if value is None:
        return 1, "unhealthy: no heartbeat (the bot is not running, not ready, or unhealthy)"
    if not value.get("healthy", True):
        reasons = "; ".join(str(r) for r in value.get("unhealthy") or []) or "unknown"
        return 1, f"unhealthy: {reasons}"
    return 0, "healthy"


def check_from_env(environ: dict[str, str] | None = None) -> int:
    """Exit code of the container health check (see the module docstring)."""
    try:
        runtime = TenantRuntime.from_env(environ)
    except RuntimeContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        value = asyncio.run(read_heartbeat(runtime))
    except (RedisError, OSError, ValueError) as exc:
        print(f"unhealthy: cannot read the heartbeat ({type(exc).__name__})", file=sys.stderr)
        return 1
    code, line = verdict(value)
    print(line, file=sys.stderr if code else sys.stdout)
    return code
