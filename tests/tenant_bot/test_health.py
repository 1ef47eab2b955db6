"""The bot's loops are supervised and its heartbeat carries its health.

A background loop that keeps crashing (here: a reminders column renamed under it, so every pass fails
with a database error no retry fixes) is restarted with backoff, turns the bot unhealthy, and the
heartbeat stops being refreshed, so the deploy worker's reconciler (which redeploys a bot whose key
is missing) heals it; the container health check says so too. Once the cause is gone the loop's
next restart succeeds and the heartbeat is refreshed again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from schemas.runtime import HEARTBEAT_TTL_SECONDS

ROOT = Path(__file__).resolve().parents[2]


async def _eventually(check: Callable[[], Awaitable[bool]], *, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


async def _check_health(runtime: Any) -> tuple[int, str]:
    """``python -m tenant_bot --check-health`` with the bot's own environment, as Docker runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tenant_bot",
        "--check-health",
        env={**os.environ, **runtime.to_env()},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, (out + err).decode()


async def _rename(database_url: str, schema: str, old: str, new: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'ALTER TABLE "{schema}".reminders RENAME COLUMN {old} TO {new}')
    finally:
        await conn.close()


async def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/healthz")
    return response.status_code, response.json()


@pytest.mark.slow  # waits out heartbeat periods: ~8 s
async def test_crashing_loop_turns_the_heartbeat_red_and_recovers(
    start_bot, tenant, redis: Redis, database_url: str, unused_tcp_port: int
) -> None:
    bot = await start_bot(heartbeat_interval=0.2, runtime={"health_port": unused_tcp_port})
    key = bot.runtime.heartbeat_key

    async def value() -> dict[str, Any]:
        raw = await redis.get(key)
        assert raw is not None
        return json.loads(raw)

    healthy = await value()
    assert healthy["healthy"] is True and healthy["unhealthy"] == []
    assert healthy["loop_restarts"] == {
        "background": 0,
        "holds": 0,
        "reviews": 0,
        "mailings": 0,
        "heartbeat": 0,
    }
    assert healthy["set_aside"] == {} and healthy["bot"] == f"{tenant.names.slug}_bot"
    assert await _check_health(bot.runtime) == (0, "healthy\n")
    assert (await _healthz(unused_tcp_port))[0] == 200

    schema = tenant.names.schema
    await _rename(database_url, schema, "attempts", "attempts_gone")
    bot.resources.background.wake.set()

    async def red() -> bool:
        return (await value())["healthy"] is False

    await _eventually(red, timeout=20)  # three crashes in a row: 1 s, then 2 s of backoff
    sick = await value()
    assert sick["loop_restarts"]["background"] >= 3
    assert any(reason.startswith("background: failing") for reason in sick["unhealthy"])
    assert not bot.resources.supervisor.healthy
    ttl = await redis.pttl(key)
    await asyncio.sleep(1.0)
    assert 0 < await redis.pttl(key) < ttl - 500  # no longer refreshed: left to expire
    code, output = await _check_health(bot.runtime)
    assert code == 1 and "background: failing" in output
    status, body = await _healthz(unused_tcp_port)
    assert status == 503 and body["status"] == "unhealthy" and body["unhealthy"]

    await _rename(database_url, schema, "attempts_gone", "attempts")

    async def green() -> bool:
        return (await value())["healthy"] is True

    await _eventually(green, timeout=20)  # the next restart (after 4 s of backoff) succeeds
    assert await redis.pttl(key) > (HEARTBEAT_TTL_SECONDS - 2) * 1000  # refreshed again
    assert bot.resources.supervisor.healthy
    assert await _check_health(bot.runtime) == (0, "healthy\n")
    assert (await _healthz(unused_tcp_port))[0] == 200


async def test_check_health_without_a_heartbeat(start_bot) -> None:
    bot = await start_bot()
    await bot.shutdown()  # a clean stop deletes the key
    code, output = await _check_health(bot.runtime)
    assert code == 1 and "no heartbeat" in output
