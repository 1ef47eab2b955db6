"""The tenant read cache of ``GET /api/v1/tenants/{slug}``: changes made elsewhere (the deploy worker's
repository, plain SQL) are seen once notified, the API's own changes at once, a lost LISTEN connection
turns the cache off until it is back, and concurrent reads never bring a row back from before a
notification that has arrived."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from control_plane.services.tenants import TenantAdminService
from control_plane.tenant_cache import EVERY_TENANT, TenantCache, TenantChangeListener
from fleet.db import connect
from fleet.repositories.tenants import TenantRepository
from fleet.secrets import SecretBox
from fleet.tenants import TenantService
from schemas.api import TenantUpdate
from tests.support.api_support import client_for, tenant_body

DEADLINE_S = 10.0


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after :data:`DEADLINE_S`."""
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.01)


async def _create(admin: httpx.AsyncClient, slug: str) -> None:
    response = await admin.post("/api/v1/tenants", json=tenant_body(slug))
    assert response.status_code == 202, response.text


async def _cached(app: FastAPI, admin: httpx.AsyncClient, slug: str) -> None:
    """Read the tenant until the cache holds it (its creation's notification may come after the
    first read and forget it again)."""
    cache: TenantCache = app.state.tenant_cache

    async def held() -> bool:
        assert (await admin.get(f"/api/v1/tenants/{slug}")).status_code == 200
        return cache.get(slug) is not None

    await _until(held, "the tenant is cached")


async def _shown(admin: httpx.AsyncClient, slug: str) -> dict:
    response = await admin.get(f"/api/v1/tenants/{slug}")
    assert response.status_code == 200, response.text
    return response.json()


# --- the cache alone --------------------------------------------------------------------------


def test_a_read_that_overlapped_an_invalidation_is_not_kept() -> None:
    cache: TenantCache[str] = TenantCache()
    cache.set_listening(True)
    before = cache.generation
    cache.invalidate("other")  # any change while the read was in flight
    cache.put("shop", "old row", generation=before)
    assert cache.get("shop") is None
    cache.put("shop", "new row", generation=cache.generation)
    assert cache.get("shop") == "new row"


def test_nothing_is_kept_or_served_while_not_listening() -> None:
    cache: TenantCache[str] = TenantCache()
    cache.put("shop", "row", generation=cache.generation)
    assert cache.get("shop") is None
    cache.set_listening(True)
    cache.put("shop", "row", generation=cache.generation)
    cache.set_listening(False)
    assert cache.get("shop") is None
    assert len(cache) == 0


def test_the_cache_is_bounded_and_forgets_all_on_truncate() -> None:
    cache: TenantCache[int] = TenantCache(max_entries=3)
    cache.set_listening(True)
    for number in range(5):
        cache.put(f"shop{number}", number, generation=cache.generation)
    assert len(cache) == 3
    assert cache.get("shop0") is None and cache.get("shop4") == 4
    cache.invalidate(EVERY_TENANT)
    assert len(cache) == 0


# --- the listener on a real PostgreSQL ----------------------------------------------------------


@pytest.fixture
async def listening(
    database_url: str,
) -> AsyncIterator[tuple[TenantCache[str], TenantChangeListener]]:
    """A cache with its own listener that does not reconnect during a test."""
    cache: TenantCache[str] = TenantCache()
    listener = TenantChangeListener(cache=cache, connect=partial(connect, database_url), retry_s=60)
    await listener.start()
    try:
        yield cache, listener
    finally:
        await listener.stop()


async def test_a_notification_forgets_its_tenant_and_a_star_forgets_all(
    listening: tuple[TenantCache[str], TenantChangeListener], pool: asyncpg.Pool
) -> None:
    cache, _ = listening
    assert cache.listening
    cache.put("shop", "row", generation=cache.generation)
    cache.put("other", "row", generation=cache.generation)
    await pool.execute("SELECT pg_notify('botfleet_tenants', 'shop')")

    async def forgotten() -> bool:
        return cache.get("shop") is None

    await _until(forgotten, "the notified slug is forgotten")
    assert cache.get("other") == "row"
    await pool.execute("SELECT pg_notify('botfleet_tenants', '*')")

    async def empty() -> bool:
        return len(cache) == 0

    await _until(empty, "every tenant is forgotten")


async def test_a_lost_listen_connection_empties_and_bypasses_the_cache(
    listening: tuple[TenantCache[str], TenantChangeListener], pool: asyncpg.Pool
) -> None:
    cache, listener = listening
    cache.put("shop", "row", generation=cache.generation)
    assert cache.get("shop") == "row"
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", listener.backend_pid)

    async def off() -> bool:
        return not cache.listening

    await _until(off, "the cache stops serving")
    assert cache.get("shop") is None
    cache.put("shop", "row read while nobody listens", generation=cache.generation)
    assert cache.get("shop") is None


async def test_a_failed_ping_turns_the_cache_off(database_url: str) -> None:
    """A connection that died without a word (no termination seen) is caught by the ping; here
    the ping fails by timing out at once."""
    cache: TenantCache[str] = TenantCache()
    listener = TenantChangeListener(
        cache=cache,
        connect=partial(connect, database_url),
        ping_s=0.05,
        ping_timeout_s=1e-6,
        retry_s=60,
    )
    await listener.start()
    try:
        assert cache.listening

        async def off() -> bool:
            return not cache.listening and listener.backend_pid is None

        await _until(off, "the cache stops serving after a failed ping")
    finally:
        await listener.stop()


async def test_the_listener_comes_back_after_a_lost_connection(
    database_url: str, pool: asyncpg.Pool
) -> None:
    cache: TenantCache[str] = TenantCache()
    listener = TenantChangeListener(
        cache=cache, connect=partial(connect, database_url), retry_s=0.05
    )
    await listener.start()
    try:
        first = listener.backend_pid
        assert first is not None and cache.listening
        await pool.fetchval("SELECT pg_terminate_backend($1)", first)

        async def back() -> bool:
            return cache.listening and listener.backend_pid not in (None, first)

        await _until(back, "listening again on a new connection")
    finally:
        await listener.stop()
    assert not cache.listening


# --- through the API --------------------------------------------------------------------------


async def test_a_change_made_by_another_process_is_seen_once_notified(
    app: FastAPI, admin: httpx.AsyncClient, pool: asyncpg.Pool, created
) -> None:
    slug = created.slug()
    await _create(admin, slug)
    await _cached(app, admin, slug)
    repo = TenantRepository(pool)
    tenant = await repo.get(slug)
    assert tenant is not None
    # What the deploy worker does once a bot is up (another process, its own pool).
    await repo.update(tenant.id, status="active", status_reason=None, bot_username="shop_bot")

    async def seen() -> bool:
        shown = await _shown(admin, slug)
        return shown["status"] == "active" and shown["bot_username"] == "shop_bot"

    await _until(seen, "GET shows the worker's change")
    await pool.execute(
        "UPDATE control.tenants SET display_name = 'Renamed by SQL' WHERE slug = $1", slug
    )

    async def renamed() -> bool:
        return (await _shown(admin, slug))["display_name"] == "Renamed by SQL"

    await _until(renamed, "GET shows a plain SQL change")
    await repo.mark_deleted(tenant.id)

    async def gone() -> bool:
        return (await admin.get(f"/api/v1/tenants/{slug}")).status_code == 404

    await _until(gone, "GET answers 404 for a deleted tenant")


async def test_the_apis_own_changes_are_visible_at_once(
    app: FastAPI, admin: httpx.AsyncClient, created
) -> None:
    slug = created.slug()
    await _create(admin, slug)
    await _cached(app, admin, slug)
    patched = await admin.patch(f"/api/v1/tenants/{slug}", json={"display_name": "New name"})
    assert patched.status_code == 200, patched.text
    assert (await _shown(admin, slug))["display_name"] == "New name"
    await _cached(app, admin, slug)
    suspended = await admin.post(f"/api/v1/tenants/{slug}/suspend")
    assert suspended.status_code == 202, suspended.text
    assert (await _shown(admin, slug))["desired_state"] == "stopped"
    await _cached(app, admin, slug)
    resumed = await admin.post(f"/api/v1/tenants/{slug}/resume")
    assert resumed.status_code == 202, resumed.text
    assert (await _shown(admin, slug))["desired_state"] == "running"


async def test_metrics_show_the_cache_serving_hits_and_misses(
    app: FastAPI, admin: httpx.AsyncClient, created
) -> None:
    slug = created.slug()
    await _create(admin, slug)
    await _cached(app, admin, slug)
    await _shown(admin, slug)
    text = (await admin.get("/metrics")).text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("botfleet_api_tenant_cache_")
    }
    assert samples["botfleet_api_tenant_cache_listening"] == 1
    assert samples["botfleet_api_tenant_cache_entries"] >= 1
    assert samples["botfleet_api_tenant_cache_hits_total"] >= 1
    assert samples["botfleet_api_tenant_cache_misses_total"] >= 1
    assert "botfleet_api_tenant_cache_invalidations_total" in samples


async def test_a_change_through_the_service_forgets_the_tenant_when_it_commits(
    admin: httpx.AsyncClient, pool: asyncpg.Pool, redis: Redis, master_key: str, created
) -> None:
    """Without waiting for its notification: a cache that listens but has heard nothing yet."""
    slug = created.slug()
    await _create(admin, slug)
    secrets = SecretBox(master_key)
    cache: TenantCache[str] = TenantCache()
    service = TenantAdminService(
        pool=pool,
        tenants=TenantService(pool=pool, redis=redis, secrets=secrets),
        secrets=secrets,
        cache=cache,
    )
    cache.set_listening(True)
    cache.put(slug, "as it was", generation=cache.generation)
    await service.update(slug, TenantUpdate(display_name="Changed"), actor="tests", request_id=None)
    assert cache.get(slug) is None
    cache.put(slug, "as it was", generation=cache.generation)
    await service.suspend(slug, actor="tests", request_id=None)
    assert cache.get(slug) is None


async def test_without_its_listen_connection_the_api_reads_postgresql(
    app: FastAPI, admin: httpx.AsyncClient, pool: asyncpg.Pool, created
) -> None:
    slug = created.slug()
    await _create(admin, slug)
    await _cached(app, admin, slug)
    cache: TenantCache = app.state.tenant_cache
    listener: TenantChangeListener = app.state.tenant_listener
    lost = listener.backend_pid
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", lost)

    async def off() -> bool:
        return not cache.listening

    await _until(off, "the cache stops serving")
    # Not notified (nobody listens), yet seen at once: the cache is bypassed, or was emptied when
    # the listener came back.
    await pool.execute(
        "UPDATE control.tenants SET display_name = 'Unnotified' WHERE slug = $1", slug
    )
    assert (await _shown(admin, slug))["display_name"] == "Unnotified"

    async def back() -> bool:
        return cache.listening and listener.backend_pid not in (None, lost)

    await _until(back, "the API listens again")
    await _cached(app, admin, slug)
    assert (await _shown(admin, slug))["display_name"] == "Unnotified"


class _Arrivals(logging.Handler):
    """When the API's listener handled each notification about one slug (it logs each at DEBUG,
    after forgetting the tenant)."""

    def __init__(self, slug: str) -> None:
        super().__init__(logging.DEBUG)
        self.slug = slug
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "tenant", None) == self.slug:
            self.times.append(time.perf_counter())


async def test_concurrent_reads_never_return_a_row_older_than_an_arrived_notification(
    app: FastAPI, make_key, pool: asyncpg.Pool, created
) -> None:
    slug = created.slug()
    key = await make_key("admin")
    async with client_for(app, key) as admin:
        await _create(admin, slug)
        await _cached(app, admin, slug)
    arrivals = _Arrivals(slug)
    logger = logging.getLogger("control_plane.tenant_cache")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(arrivals)
    # The creation's own notifications may still be on their way (a loaded machine): wait for a
    # quiet half second, then count only what the writes below cause.
    while True:
        heard = len(arrivals.times)
        await asyncio.sleep(0.5)
        if len(arrivals.times) == heard:
            break
    arrivals.times.clear()
    reads: list[tuple[float, int]] = []
    cached_sizes: list[int] = []
    stop = asyncio.Event()
    cache: TenantCache = app.state.tenant_cache

    async def reader() -> None:
        async with client_for(app, key) as client:
            while not stop.is_set():
                started = time.perf_counter()
                name = (await _shown(client, slug))["display_name"]
                reads.append((started, int(name[1:]) if name.startswith("v") else 0))
                cached_sizes.append(len(cache))

    writes = 30
    readers = [asyncio.create_task(reader()) for _ in range(8)]
    try:
        async with pool.acquire() as writer:
            for version in range(1, writes + 1):
                await writer.execute(
                    "UPDATE control.tenants SET display_name = $2 WHERE slug = $1",
                    slug,
                    f"v{version}",
                )

                async def notified(version: int = version) -> bool:
                    return len(arrivals.times) >= version

                await _until(notified, f"the notification of v{version} arrives")
                await asyncio.sleep(0.005 * (version % 4))  # let reads refill the cache
    finally:
        stop.set()
        await asyncio.gather(*readers)
        logger.removeHandler(arrivals)
        logger.setLevel(level)
    assert len(arrivals.times) == writes
    stale = [
        (version, seen)
        for started, seen in reads
        for version, arrived in enumerate(arrivals.times, start=1)
        if started > arrived and seen < version
    ]
    assert not stale, f"reads started after v{stale[0][0]} was notified saw v{stale[0][1]}"
    assert max(cached_sizes) > 0  # reads were served from the cache, not only from PostgreSQL
    async with client_for(app, key) as admin:
        assert (await _shown(admin, slug))["display_name"] == f"v{writes}"
