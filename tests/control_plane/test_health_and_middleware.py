"""Health, readiness, metrics, request ids in responses/logs, and problems for everything else."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets

import asyncpg
import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from control_plane.app import create_app
from control_plane.services.health import HealthService
from fleet.apikeys import ApiKeyService
from fleet.db import create_pool
from fleet.logs import ContextJsonFormatter
from fleet.migrations import Migration, load_migrations
from fleet.settings import Settings
from kit.supervisor import Supervisor
from tests.support.api_support import client_for, tenant_body
from tests.support.databases import ControlTemplate, drop_later


async def test_healthz_and_readyz(app: FastAPI) -> None:
    async with client_for(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"postgres", "redis", "migrations", "loops"}
    assert all(check["ok"] for check in body["checks"].values())


async def test_readiness_reports_each_failure(pool: asyncpg.Pool, redis: Redis) -> None:
    future = Migration("9999_future", "SELECT 1", "0" * 64)
    dead_redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        health = HealthService(
            pool=pool, redis=dead_redis, migrations=[*load_migrations("control"), future]
        )
        readiness = await health.readiness()
    finally:
        await dead_redis.aclose()
    assert readiness.status == "not_ready"
    assert readiness.checks["postgres"].ok
    assert not readiness.checks["redis"].ok
    assert not readiness.checks["migrations"].ok
    assert "9999_future" in readiness.checks["migrations"].detail
    assert "botfleet migrate" in readiness.checks["migrations"].detail
    edited = Migration(load_migrations("control")[0].version, "", "f" * 64)
    changed = await HealthService(pool=pool, redis=redis, migrations=[edited]).readiness()
    assert not changed.checks["migrations"].ok


async def test_readyz_answers_503_when_not_ready(app: FastAPI) -> None:
    app.state.services.health._migrations.append(Migration("9999_future", "", "0" * 64))
    async with client_for(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"


async def test_metrics_by_route_template_and_status(admin: httpx.AsyncClient, created) -> None:
    slug = created.slug()
    await admin.post("/api/v1/tenants", json=tenant_body(slug))
    await admin.get(f"/api/v1/tenants/{slug}")
    await admin.get("/api/v1/tenants/zz_nobody_here")
    await admin.get("/no/such/path")
    text = (await admin.get("/metrics")).text
    assert (
        'botfleet_api_requests_total{method="GET",route="/api/v1/tenants/{slug}",status="200"} 1.0'
        in text
    )
    assert 'route="/api/v1/tenants/{slug}",status="404"} 1.0' in text
    assert 'botfleet_api_request_duration_seconds_bucket{le="0.005",method="POST"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert slug not in text  # templates, never concrete paths
    assert 'botfleet_jobs{state="queued"}' in text
    assert 'botfleet_tenants{status="provisioning"}' in text


async def test_request_id_is_taken_or_made_and_logged(
    admin: httpx.AsyncClient, created, pool: asyncpg.Pool
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ContextJsonFormatter())
    access = logging.getLogger("control_plane.access")
    access.addHandler(handler)
    previous = access.level
    access.setLevel(logging.INFO)
    try:
        given = await admin.get("/healthz", headers={"X-Request-Id": "trace-abc.1"})
        made = await admin.get("/healthz")
        bad = await admin.get("/healthz", headers={"X-Request-Id": "no spaces allowed\t"})
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
    assert given.headers["x-request-id"] == "trace-abc.1"
    assert len(made.headers["x-request-id"]) == 32
    assert bad.headers["x-request-id"] != "no spaces allowed\t"
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records[0]["request_id"] == "trace-abc.1"
    assert records[0]["route"] == "/healthz"
    assert records[0]["status"] == 200
    assert records[1]["request_id"] == made.headers["x-request-id"]


async def test_unknown_routes_and_methods_are_problems(admin: httpx.AsyncClient) -> None:
    missing = await admin.get("/api/v1/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "/docs" in missing.json()["detail"]
    wrong = await admin.put("/api/v1/plans")
    assert wrong.status_code == 405
    assert wrong.json()["type"] == "urn:botfleet:problem:method-not-allowed"
    malformed = await admin.post(
        "/api/v1/plans", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert "not valid JSON" in malformed.json()["detail"]


async def test_unexpected_errors_are_500_problems_with_the_request_id(app: FastAPI) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internals 123456789:AAbcdefghijklmnopqrstuvwxyz0123456")

    app.add_api_route("/explode", explode)
    async with client_for(app) as client:
        response = await client.get("/explode", headers={"X-Request-Id": "boom-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    problem = response.json()
    assert problem["request_id"] == "boom-1"
    assert "internals" not in response.text


async def test_docs_and_openapi_are_served(app: FastAPI) -> None:
    async with client_for(app) as client:
        docs = await client.get("/docs")
        schema = (await client.get("/openapi.json")).json()
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "Problem" in schema["components"]["schemas"]
    create = schema["paths"]["/api/v1/tenants"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "TenantCreate"
    )
    assert schema["components"]["schemas"]["TenantCreate"]["examples"]
    problem = create["responses"]["409"]["content"]["application/problem+json"]
    assert problem["schema"]["$ref"] == "#/components/schemas/Problem"


async def test_readyz_and_metrics_cover_the_supervised_loops(
    api_settings: Settings, pool: asyncpg.Pool, redis: Redis
) -> None:
    """The API's own loops and, as under ``botfleet up``, other components' loops of the process:
    one that keeps failing turns ``/readyz`` 503 naming it, and ``/metrics`` shows it."""
    worker_loops = Supervisor("worker", backoff_initial=0.01, backoff_max=0.05, failing_after=2)
    failing = asyncio.Event()
    crashes = 0

    async def reconciler() -> None:
        nonlocal crashes
        crashes += 1
        if crashes >= 2:
            failing.set()
        raise RuntimeError("reconcile bug")

    worker_loops.add("reconciler", reconciler)
    app = create_app(api_settings, pool=pool, redis=redis, supervisors=[worker_loops])
    async with app.router.lifespan_context(app), client_for(app) as client:
        healthy = await client.get("/readyz")
        async with worker_loops:
            await asyncio.wait_for(failing.wait(), 10)
            unhealthy = await client.get("/readyz")
            metrics = (await client.get("/metrics")).text
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["checks"]["loops"]["ok"]
    assert unhealthy.status_code == 503
    loops = unhealthy.json()["checks"]["loops"]
    assert not loops["ok"]
    assert "worker/reconciler: failing (RuntimeError: reconcile bug)" in loops["detail"]
    assert unhealthy.json()["checks"]["postgres"]["ok"]
    assert 'botfleet_loop_healthy{loop="reconciler",process="worker"} 0.0' in metrics
    assert 'botfleet_loop_healthy{loop="tenant_cache_listener",process="api"} 1.0' in metrics
    assert 'botfleet_loop_healthy{loop="idempotency_purge",process="api"} 1.0' in metrics
    assert 'botfleet_loop_restarts_total{loop="reconciler",process="worker"}' in metrics
    for name in (
        "botfleet_events_pending",
        "botfleet_events_oldest_pending_age_seconds",
        "botfleet_events_failed",
        "botfleet_tenants_without_heartbeat",
    ):
        assert f"\n{name} " in metrics, name


async def test_outbox_metrics_count_owner_notices(
    api_settings: Settings, redis: Redis, database_url: str, control_template: ControlTemplate
) -> None:
    """The pending gauge counts owner notices not yet delivered (on a database of the test's own:
    another test's dispatcher in the shared one delivers events between two scrapes)."""
    name = "bfm_" + secrets.token_hex(5)
    url = await control_template.copy(name)
    pool = await create_pool(url, min_size=1, max_size=4)
    try:
        app = create_app(
            api_settings.model_copy(update={"database_url": url}), pool=pool, redis=redis
        )
        key = await ApiKeyService(pool=pool).create(scopes=["admin"], name="test", actor="tests")
        async with app.router.lifespan_context(app), client_for(app, key.key) as admin:
            await admin.post("/api/v1/tenants", json=tenant_body("t" + secrets.token_hex(6)))
            tenant_id = await pool.fetchval("SELECT id FROM control.tenants")
            before = _gauges((await admin.get("/metrics")).text)
            await pool.execute(
                "INSERT INTO control.events (tenant_id, kind, payload, created_at)"
                " VALUES ($1, 'tenant.live', '{}', now() - interval '10 minutes')",
                tenant_id,
            )
            after = _gauges((await admin.get("/metrics")).text)
    finally:
        await pool.close()
        drop_later(database_url, name)
    assert after["botfleet_events_pending"] == before["botfleet_events_pending"] + 1
    assert after["botfleet_events_oldest_pending_age_seconds"] >= 600


def _gauges(text: str) -> dict[str, float]:
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("botfleet_events_")
    }


async def test_tenant_bot_heartbeats_show_in_the_api_metrics(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, redis: Redis, created
) -> None:
    """What a live bot's heartbeat says (loops failing; messages set aside; requests that found
    the database unavailable) reaches /metrics."""
    from datetime import UTC, datetime

    from fleet.identifiers import redis_prefix
    from tenant_bot.booking import StorageOutages
    from tenant_bot.delivery import DeliveryTally
    from tenant_bot.health import snapshot
    from tenant_bot.heartbeat import Heartbeat

    slug = created.slug()
    await admin.post("/api/v1/tenants", json=tenant_body(slug))
    await pool.execute(
        "UPDATE control.tenants SET status = 'active', desired_state = 'running' WHERE slug = $1",
        slug,
    )
    # The bot's own heartbeat: two reminders set aside, one loop failing.
    supervisor, tally = Supervisor("tenant_bot", failing_after=1), DeliveryTally()
    tally.set_aside("reminder", 1, "TelegramBadRequest: chat not found")
    tally.set_aside("reminder", 2, "TelegramForbiddenError: bot was blocked")
    outages = StorageOutages()  # PostgreSQL restarted: twice PgBouncer said so, once it itself
    for cause in ("pooler", "pooler", "database"):
        outages.note(cause)

    async def broken() -> None:
        raise RuntimeError("background bug")

    supervisor.add("background", broken)
    supervisor.start()
    await asyncio.sleep(0.05)
    key = redis_prefix(slug) + "heartbeat"
    try:
        beat = Heartbeat(
            redis,
            key=key,
            ttl_seconds=60,
            clock=lambda: datetime.now(UTC),
            health=lambda: snapshot(supervisor, tally, outages),
        )
        await redis.set(key, "{}", ex=60)  # it was healthy a moment ago
        assert await beat.beat() is False
        metrics = (await admin.get("/metrics")).text
    finally:
        await supervisor.stop()
        await redis.delete(key)
    assert 'botfleet_tenant_items_set_aside{kind="reminder"} 2.0' in metrics
    assert 'botfleet_tenant_storage_unavailable{cause="pooler"} 2.0' in metrics
    assert 'botfleet_tenant_storage_unavailable{cause="database"} 1.0' in metrics
    restarts = [m for m in metrics.splitlines() if m.startswith("botfleet_tenant_loop_restarts{")]
    assert any('loop="background"' in m and float(m.split()[1]) >= 1 for m in restarts), restarts
    unhealthy = [line for line in metrics.splitlines() if line.startswith("botfleet_tenant_bots_")]
    assert unhealthy and float(unhealthy[-1].split()[1]) >= 1, unhealthy
