"""PostgreSQL connections follow activity, not tenants: an idle bot holds none, a busy one a bounded
number, and a user who finds them all busy is told to try again instead of waiting without end."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from types import SimpleNamespace

import asyncpg
import pytest

from schemas.runtime import TenantRuntime
from tenant_bot.background import RECHECK_SECONDS
from tenant_bot.booking.notices import CUSTOMER_GRACE
from tenant_bot.resources import REDIS_MAX_CONNECTIONS
from tests.support.chat_helpers import book_first_slot, say, wait_for_text


async def _bot_connections(database_url: str, role: str) -> int:
    """The bot's server connections (its pools name themselves ``tenant_bot``; the test's own
    ``tenant.core`` pool logs in as the same role but is not counted)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE usename = $1 AND application_name LIKE 'tenant_bot%'",
            role,
        )
    finally:
        await conn.close()


async def _until_connections(database_url: str, role: str, want: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (count := await _bot_connections(database_url, role)) != want:
        assert loop.time() < deadline, f"{count} connections, expected {want}"
        await asyncio.sleep(0.2)


async def test_a_started_bot_holds_no_connection(start_bot, tenant, database_url) -> None:
    """Start-up (the database check, the profile, the first background pass) leaves none open, so a
    fleet starting at once does not fill PostgreSQL; the default idle close (30 s) is not waited."""
    await start_bot()
    await _until_connections(database_url, tenant.names.role, 0, timeout=3)


@pytest.mark.slow  # waits for the pool's idle timeout: ~7 s
async def test_idle_bot_holds_no_connection_and_a_cold_pool_still_books(
    start_bot, tenant, database_url
) -> None:
    bot = await start_bot(runtime={"db_idle_seconds": 1.0})
    role = tenant.names.role
    await _until_connections(database_url, role, 0, timeout=10)  # start-up's connection closed
    await asyncio.sleep(3.0)  # the background loop and the heartbeat do not open one while idle
    assert await _bot_connections(database_url, role) == 0
    anna = await bot.customer("Anna")
    assert (await say(anna, "/start"))["text"]  # the first query opens a connection
    await book_first_slot(anna)
    [booked] = await tenant.core.bookings.for_day(date(2030, 1, 8))
    assert booked.customer_name == "Anna"
    assert await _bot_connections(database_url, role) <= 5 + 1  # the pool's max + background
    await _until_connections(database_url, role, 0, timeout=10)  # idle again: none


async def test_user_told_politely_when_the_pool_is_exhausted(start_bot, tenant) -> None:
    bot = await start_bot(runtime={"db_pool_max": 1, "db_acquire_timeout": 0.5})
    anna = await bot.customer("Anna")
    async with bot.resources.pool.acquire():  # every connection of the pool is busy
        started = asyncio.get_running_loop().time()
        answer = await say(anna, "/book", timeout=5.0)
        waited = asyncio.get_running_loop().time() - started
    assert "temporarily unavailable" in answer["text"]
    assert waited < 3.0
    assert "Haircut" in str((await say(anna, "/book"))["inline_keyboard"])  # free again: served


async def test_background_sleeps_until_the_next_item_falls_due(start_bot, tenant, clock) -> None:
    bot = await start_bot(background=False)  # the test runs the passes itself
    background = bot.resources.background
    await background.tick()
    assert background.pause() == RECHECK_SECONDS  # nothing waiting: only the periodic recheck
    anna = await bot.customer("Anna")
    await book_first_slot(anna)  # Tue 8 Jan 10:00 Moscow; the 24 h reminder is due Mon 10:00
    await background.tick()
    # the customer's durable confirmation is looked at once its grace is over (the checkout
    # showed it: it is skipped), then the reminder, due in an hour: the recheck comes first
    assert background.pause() == CUSTOMER_GRACE.total_seconds()
    clock.advance(CUSTOMER_GRACE + timedelta(seconds=1))
    await background.tick()
    assert background.pause() == RECHECK_SECONDS
    clock.advance(timedelta(minutes=58) - CUSTOMER_GRACE - timedelta(seconds=1))  # Mon 09:58
    await background.tick()
    assert background.pause() == 120.0
    clock.advance(timedelta(minutes=3))
    counts = await background.tick()
    assert counts["reminders"] == 1
    # the 2 h reminder is next, 22 h later: the recheck caps the sleep
    assert background.pause() == RECHECK_SECONDS


async def test_a_booking_wakes_the_background_work(start_bot, tenant, clock) -> None:
    """The loop sleeps until the recheck; a booking whose reminder is due soon still gets it."""
    bot = await start_bot()
    bot.resources.background.interval = 2.0  # a nudge runs a pass this long after the booking
    anna = await bot.customer("Anna")
    await book_first_slot(anna)  # Tue 8 Jan 10:00 Moscow
    clock.advance(timedelta(hours=1, minutes=1))  # Mon 10:01: the 24 h reminder is due
    reminder = await wait_for_text(anna, "Reminder", timeout=10.0)
    assert "Tue 8 Jan, 10:00" in reminder["text"]


async def test_redis_connections_per_bot_are_bounded(start_bot) -> None:
    bot = await start_bot()
    pool = bot.resources.redis.connection_pool
    assert pool.max_connections == REDIS_MAX_CONNECTIONS
    # more concurrent commands than connections wait for one instead of failing
    results = await asyncio.gather(
        *(bot.resources.redis.ping() for _ in range(REDIS_MAX_CONNECTIONS * 4))
    )
    assert all(results)


def test_deploy_worker_settings_reach_the_bots_pool() -> None:
    """``BOTFLEET_TENANT_DB_*`` settings go into the runtime contract; unset, nothing is added (so
    the specs of existing bots, and their hashes, do not change)."""
    from deploy_worker.spec import SpecBuilder
    from fleet.data_plane import TenantNames
    from fleet.settings import load_settings
    from fleet.tenants import TenantSecrets

    tenant = SimpleNamespace(
        slug="acme",
        owner_telegram_ids=[1],
        locale="en",
        timezone="Europe/Moscow",
        display_name="Acme",
    )
    secrets = TenantSecrets("123456789:" + "S" * 35, "dbpass", "redispass")
    names = TenantNames.of("acme")
    base = {"database_url": "postgresql://p@db/botfleet", "redis_url": "redis://redis:6379/0"}

    def contract(**settings: object) -> dict[str, str]:
        builder = SpecBuilder(settings=load_settings(**base, **settings), namespace="tenant_")
        return builder.runtime_contract(tenant, secrets, names).to_env()

    assert not [name for name in contract() if name.startswith("BOTFLEET_TENANT_DB_")]
    tuned = contract(tenant_db_pool_max=3, tenant_db_idle_s=10, tenant_db_acquire_timeout_s=2)
    runtime = TenantRuntime.from_env(tuned)
    assert (runtime.db_pool_max, runtime.db_idle_seconds, runtime.db_acquire_timeout) == (3, 10, 2)
