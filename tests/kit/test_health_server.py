"""The health endpoint of the processes without HTTP of their own, served for real on a free port:
liveness, readiness from real PostgreSQL/Redis probes and the supervised loops, and metrics."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from redis.asyncio import Redis

from kit.checks import postgres_probe, redis_probe
from kit.health_server import HealthServer, serve_health
from kit.supervisor import Supervisor


async def test_ready_while_loops_and_dependencies_are_healthy(
    pool: asyncpg.Pool, redis: Redis
) -> None:
    supervisor = Supervisor("worker")

    async def ticking() -> None:
        while True:
            supervisor.beat("jobs")
            await asyncio.sleep(0.05)

    supervisor.add("jobs", ticking, stale_after=10)
    server = HealthServer(
        supervisors=[supervisor],
        probes={"postgres": postgres_probe(pool), "redis": redis_probe(redis)},
    )
    async with supervisor, server.serving("127.0.0.1", 0):
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            live = await client.get("/healthz")
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"postgres", "redis", "loops"}
    assert body["loops"]["worker"]["jobs"]["healthy"]
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'botfleet_loop_healthy{loop="jobs",process="worker"} 1.0' in metrics.text


async def test_not_ready_names_the_failing_loop_and_the_dead_dependency(pool: asyncpg.Pool) -> None:
    supervisor = Supervisor("sales-bot", backoff_initial=0.01, backoff_max=0.05, failing_after=2)
    crashes = 0
    failing = asyncio.Event()

    async def outbox() -> None:
        nonlocal crashes
        crashes += 1
        if crashes >= 3:
            failing.set()
        raise KeyError("delete_at")

    supervisor.add("outbox", outbox)
    dead_redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    server = HealthServer(
        supervisors=[supervisor],
        probes={"postgres": postgres_probe(pool), "redis": redis_probe(dead_redis)},
    )
    try:
        async with supervisor, server.serving("127.0.0.1", 0):
            await asyncio.wait_for(failing.wait(), 10)
            async with httpx.AsyncClient(timeout=5) as client:
                ready = await client.get(f"http://127.0.0.1:{server.port}/readyz")
    finally:
        await dead_redis.aclose()
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["postgres"]["ok"]
    assert not checks["redis"]["ok"] and checks["redis"]["detail"].startswith("unreachable")
    assert not checks["loops"]["ok"]
    assert "sales-bot/outbox: failing (KeyError: 'delete_at')" in checks["loops"]["detail"]


async def test_port_zero_in_settings_serves_nothing() -> None:
    server = HealthServer(supervisors=[])
    async with serve_health(server, host="127.0.0.1", port=0) as serving:
        assert serving is None and server.port is None
