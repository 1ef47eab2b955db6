"""Tenant bots through a real PgBouncer in transaction mode (fleet/pooler.py): each tenant still runs as
its own role in its own schema, many tenants booking at once stay within the pooler's bound of server
connections without a double booking, and a tenant's credentials open nothing of another tenant."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import date

import asyncpg
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedPgBouncer, free_port
from fleet.data_plane import (
    TenantNames,
    drop_database_plane,
    drop_redis_user,
    ensure_database_plane,
    ensure_redis_user,
)
from fleet.pooler import PoolerConfig
from fleet.pooler_stats import read_pooler_figures
from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from schemas.runtime import TenantRuntime
from tenant_bot.app import run
from tenant_bot.booking import Actor, BookingCore, WorkInterval, init_connection
from tenant_bot.booking.errors import SlotUnavailable, StorageUnavailable
from tenant_bot.resources import DB_ACQUIRE_TIMEOUT_SECONDS, DB_POOL_MAX, BotResources
from tests.support.chat_helpers import bot_view, say, settle, tap
from tests.support.pgbouncer import MISSING as PGBOUNCER_MISSING
from tests.support.pgbouncer import Pooler, running_pooler
from tests.tenant_bot.conftest import FakeClock


@contextlib.asynccontextmanager
async def _tenant_plane(
    database_url: str, prefix: str, slug: str
) -> AsyncIterator[tuple[TenantNames, str]]:
    names = TenantNames.of(slug, prefix)
    password = secrets.token_hex(12)
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_database_plane(conn, names, password=password)
    finally:
        await conn.close()
    try:
        yield names, password
    finally:
        conn = await asyncpg.connect(database_url)
        try:
            await drop_database_plane(conn, names)
        finally:
            await conn.close()


async def test_search_path_and_isolation_hold_through_the_pooler(
    pgbouncer: Pooler, database_url: str, role_prefix: str
) -> None:
    async with (
        _tenant_plane(database_url, role_prefix, "alpha") as (alpha, alpha_pw),
        _tenant_plane(database_url, role_prefix, "bravo") as (bravo, bravo_pw),
    ):
        # bravo has a customer alpha must never see
        conn = await asyncpg.connect(pgbouncer.url(bravo.role, bravo_pw), statement_cache_size=0)
        await conn.execute("INSERT INTO customers (telegram_user_id, name) VALUES (42, 'Secret')")
        await conn.close()

        conn = await asyncpg.connect(pgbouncer.url(alpha.role, alpha_pw), statement_cache_size=0)
        try:
            # the role's search_path, applied at the server login, on whichever server connection
            for _ in range(5):
                assert alpha.schema in await conn.fetchval("SHOW search_path")
                assert await conn.fetchval("SELECT current_user") == alpha.role
                assert await conn.fetchval("SELECT count(*) FROM customers") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f'SELECT * FROM "{bravo.schema}".customers')
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'SET ROLE "{bravo.role}"')
            await conn.execute(f'SET search_path = "{bravo.schema}"')
            with pytest.raises(asyncpg.PostgresError):  # no USAGE on the schema: nothing resolves
                await conn.fetch("SELECT * FROM customers")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the lookup is not for tenants
                await conn.fetch("SELECT * FROM pgbouncer.get_auth($1)", bravo.role)
        finally:
            await conn.close()

        # another tenant's name with this tenant's password; a superuser; a database not served
        for url in (
            pgbouncer.url(bravo.role, alpha_pw),
            pgbouncer.url("postgres", alpha_pw),
            pgbouncer.url("postgres", ""),
            pgbouncer.url(alpha.role, alpha_pw).rsplit("/", 1)[0] + "/postgres",
        ):
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                await (await asyncpg.connect(url, statement_cache_size=0, timeout=5)).close()


async def test_the_booking_statement_runs_through_the_pooler_without_a_statement_cache(
    pgbouncer: Pooler, database_url: str, role_prefix: str, clock: FakeClock
) -> None:
    """asyncpg with ``statement_cache_size=0`` (what a bot behind a pooler gets): many concurrent
    bookings of one tenant on few server connections, the booking function with its composite
    argument included, and not one "prepared statement does not exist"."""
    async with _tenant_plane(database_url, role_prefix, "charlie") as (names, password):
        pool = await asyncpg.create_pool(
            pgbouncer.url(names.role, password), statement_cache_size=0, min_size=0, max_size=10
        )
        try:
            core = BookingCore(pool, clock=clock)
            service = await core.catalogue.create_service(
                name="Haircut", duration_minutes=60, price=1500
            )
            staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
            for weekday in range(7):
                await core.catalogue.set_working_hours(
                    staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
                )
            free = await core.slots.free_slots(service.id, day_from=date(2030, 1, 8), staff_id=None)
            slots = [slot for slot in free if slot.start.minute == 0][
                :4
            ]  # an hour each: no overlap
            customers = [
                await core.customers.register(1000 + i, name=f"C{i}", locale="en")
                for i in range(40)
            ]
            results = await asyncio.gather(
                *(
                    core.bookings.book(
                        customer_id=c.id,
                        service_id=service.id,
                        start=slots[i % 4].start,
                        staff_id=slots[i % 4].staff_id,
                        actor=Actor.customer(1000 + i),
                        idempotency_key=f"k{i}",
                    )
                    for i, c in enumerate(customers)
                ),
                return_exceptions=True,
            )
        finally:
            await pool.close()
        failures = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(f, SlotUnavailable) for f in failures), failures[:3]
        booked = await _bookings(database_url, names)
        assert len(booked) == len(set(booked)) == 4  # one per slot, 36 told it is taken
        assert len(failures) == 36


async def _bookings(database_url: str, names: TenantNames) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            f'SELECT staff_id, starts_at FROM "{names.schema}".bookings'
            " WHERE status IN ('pending', 'confirmed')"
        )
    finally:
        await conn.close()
    return [f"{r['staff_id']}@{r['starts_at'].isoformat()}" for r in rows]


# Backends PgBouncer closed (evicted to make room for another tenant's pool) that PostgreSQL still
# lists while their processes exit: up to 4 seen on a loaded 2-core host with many pools churning.
EXITING_BACKENDS = 6
TENANTS = 12
CUSTOMERS_PER_TENANT = 4
SERVER_BOUND = 8


async def _server_connections(conn: asyncpg.Connection, prefix: str) -> int:
    """Server connections logged in as this test's tenant roles (the pooler's, to PostgreSQL)."""
    return await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename, $1)"
        " AND usename NOT LIKE '%\\_pooler'",
        prefix,
    )


@pytest.mark.slow  # twelve live bots: ~45 s on 2 cores
async def test_many_live_tenants_book_at_once_within_the_pooler_bound(
    database_url: str,
    redis: Redis,
    redis_url: str,
    role_prefix: str,
    emulator: TelegramEmulator,
    sandbox: TelegramSandbox,
    clock: FakeClock,
) -> None:
    """Twelve live bots behind a pooler allowed eight server connections; four customers of each tap
    the same slot at once (48 bookings in flight): PostgreSQL never sees more than eight tenant
    connections (one more while PgBouncer swaps one tenant's idle connection for another's), each slot goes to exactly one customer, every other one is told it is taken."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(PGBOUNCER_MISSING)
    host = redis_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    owner = await sandbox.create_user("Owner", language_code="en")
    async with (
        running_pooler(database_url, max_server_connections=SERVER_BOUND) as pooler,
        contextlib.AsyncExitStack() as stack,
    ):
        bots: list[tuple[TenantNames, BotResources]] = []
        stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
        for n in range(TENANTS):
            names, password = await stack.enter_async_context(
                _tenant_plane(database_url, role_prefix, f"shop{n:02d}")
            )
            await ensure_redis_user(redis, names, password=password)
            stack.push_async_callback(drop_redis_user, redis, names)
            await _seed(pooler.url(names.role, password), clock)
            token = f"{7_100_000_000 + n * 1000 + secrets.randbelow(999)}:{secrets.token_urlsafe(30)[:35].replace('-', 'a')}"
            await sandbox.register_bot(token, username=f"{names.slug}_bot")
            runtime = TenantRuntime(
                slug=names.slug,
                bot_token=token,
                database_url=pooler.url(names.role, password),
                redis_url=f"redis://{names.redis_user}:{password}@{host}/0",
                redis_prefix=names.redis_prefix,
                owner_ids=[owner["id"]],
                locale="en",
                telegram_api_base=emulator.base_url,
                db_transaction_pooler=True,
            )
            ready: asyncio.Future[BotResources] = asyncio.get_running_loop().create_future()
            stop = asyncio.Event()
            task = asyncio.create_task(
                run(
                    runtime, stop=stop, clock=clock, on_ready=ready.set_result, rate_limit=(100, 10)
                )
            )
            stops.append((stop, task))
            stack.push_async_callback(_stop_bot, stop, task)
            bots.append((names, await asyncio.wait_for(ready, timeout=30)))

        watcher = await asyncpg.connect(database_url)
        peak = held = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak, held
            while sampling:
                peak = max(peak, await _server_connections(watcher, role_prefix))
                figures = await read_pooler_figures(pooler.stats_url())
                held = max(held, figures.server_connections)
                await asyncio.sleep(0.02)

        customers = [
            await sandbox.user(bot_id=resources.me.id, first_name=f"C{n}")
            for _, resources in bots
            for n in range(CUSTOMERS_PER_TENANT)
        ]
        sampler = asyncio.create_task(sample())
        try:
            # browsing to the summary a dozen at a time (the moment under test is the Confirm)
            gate = asyncio.Semaphore(TENANTS)

            async def prepare(customer: TelegramUser) -> None:
                async with gate:
                    await _to_summary(customer)

            await asyncio.gather(*(prepare(c) for c in customers))
            before = await asyncio.gather(*(bot_view(c) for c in customers))
            await asyncio.gather(*(c.click("✅ Confirm") for c in customers))
            finals = await asyncio.gather(
                *(settle(c, b, timeout=30) for c, b in zip(customers, before, strict=True))
            )
        finally:
            sampling = False
            await sampler
            await watcher.close()
        texts = [f["text"] for f in finals]
        for n, (names, _) in enumerate(bots):
            mine = texts[n * CUSTOMERS_PER_TENANT : (n + 1) * CUSTOMERS_PER_TENANT]
            assert sum("You are booked" in t for t in mine) == 1, (names.slug, mine)
            assert sum("just taken" in t for t in mine) == CUSTOMERS_PER_TENANT - 1
            booked = await _bookings(database_url, names)
            assert len(booked) == len(set(booked)) == 1
        # PgBouncer closes an idle connection of one tenant to open one for another (max_db_connections
        # reached): it never holds more than its bound, but PostgreSQL may still list the closed
        # backends for a moment next to the new ones while their processes exit.
        assert 0 < held <= SERVER_BOUND, held
        assert 0 < peak <= SERVER_BOUND + EXITING_BACKENDS, peak


async def _seed(url: str, clock: FakeClock) -> None:
    pool = await asyncpg.create_pool(url, statement_cache_size=0, min_size=0, max_size=1)
    try:
        core = BookingCore(pool, clock=clock)
        await core.catalogue.update_settings(business_name="Barber", time_zone="Europe/Moscow")
        service = await core.catalogue.create_service(
            name="Haircut", duration_minutes=60, price=1500
        )
        staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
        for weekday in range(7):
            await core.catalogue.set_working_hours(
                staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
            )
    finally:
        await pool.close()


async def _to_summary(user: TelegramUser) -> None:
    await say(user, "/book", timeout=30)
    await tap(user, "Haircut · 1 h · 1\u202f500 ₽", timeout=30)
    await tap(user, "8", timeout=30)
    await tap(user, "10:00", timeout=30)
    await say(user, "Anna", timeout=30)
    await say(user, "+7 916 123-45-67", timeout=30)


async def _stop_bot(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, timeout=15)


async def test_named_prepared_statements_break_through_the_pooler_unnamed_ones_do_not(
    pgbouncer: Pooler, database_url: str, role_prefix: str
) -> None:
    """Why bots behind the pooler turn asyncpg's statement cache off (PgBouncer 1.18 does not carry
    named prepared statements between server connections): 300 queries on 6 clients sharing 3 server
    connections fail with the cache on, and all succeed with it off."""
    async with _tenant_plane(database_url, role_prefix, "delta") as (names, password):
        errors = {}
        for cache in (100, 0):
            pool = await asyncpg.create_pool(
                pgbouncer.url(names.role, password),
                statement_cache_size=cache,
                min_size=6,
                max_size=6,
            )
            try:
                results = await asyncio.gather(
                    *(
                        pool.fetchval("SELECT count(*) FROM bookings WHERE id > $1", i)
                        for i in range(300)
                    ),
                    return_exceptions=True,
                )
            finally:
                await pool.close()
            errors[cache] = [r for r in results if isinstance(r, BaseException)]
        assert errors[100] and all(
            isinstance(e, asyncpg.InvalidSQLStatementNameError) for e in errors[100]
        )
        assert errors[0] == []


# -- PostgreSQL away behind the pooler ------------------------------------------------------------------

UNAVAILABLE = "temporarily unavailable"
# how soon a customer must hear of it (the fault suite allows 15 s end to end; PgBouncer's own
# query_wait_timeout is 8 s, the bot's connection wait 5 s)
TOLD_WITHIN_S = 10.0


async def _told(user: TelegramUser, action: Callable[[], Awaitable[object]]) -> tuple[str, float]:
    """Run ``action`` (a message or a tap); (what the user was told, seconds it took): a callback
    alert or toast with text, or the bot message that appeared or changed. Fails on silence."""
    before = await user.chat()
    seen = len(before.get("callback_answers") or [])
    old = {m["message_id"]: (m["text"], m.get("edit_date")) for m in before["messages"]}
    loop = asyncio.get_running_loop()
    started = loop.time()
    await action()
    while loop.time() - started < 20:
        chat = await user.chat()
        answers = [a for a in (chat.get("callback_answers") or [])[seen:] if a.get("text")]
        if answers:
            return str(answers[-1]["text"]), loop.time() - started
        changed = [
            m
            for m in chat["messages"]
            if m["from"] == "bot"
            and m["text"]  # not a file (a booking's calendar file follows its confirmation)
            and old.get(m["message_id"]) != (m["text"], m.get("edit_date"))
        ]
        if changed:
            return str(changed[-1]["text"]), loop.time() - started
        await asyncio.sleep(0.1)
    raise AssertionError("the bot said nothing for 20 s")


async def _reloaded(pooler: Pooler, config: PoolerConfig) -> None:
    """Point the running PgBouncer at ``config`` and wait until it has read it."""
    reloads = pooler.log().count("got SIGHUP")
    pooler.bouncer.reload(config)
    for _ in range(100):
        if pooler.log().count("got SIGHUP") > reloads:
            await asyncio.sleep(0.2)  # the log line comes first, then the new settings apply
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"pgbouncer did not reload:\n{pooler.log()[-1000:]}")


async def test_customers_are_told_at_once_while_the_pooler_cannot_log_in_and_book_when_it_can(
    database_url: str,
    redis: Redis,
    redis_url: str,
    role_prefix: str,
    emulator: TelegramEmulator,
    sandbox: TelegramSandbox,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bot behind PgBouncer; the pooler is pointed at a port where no PostgreSQL listens (as when
    PostgreSQL restarts: every server login fails). A customer at the summary taps Confirm and a
    newcomer sends /book: both are told "temporarily unavailable" within seconds, the failures are
    logged and counted (in the heartbeat's ``storage_unavailable``). Pointed back, the very next Confirm books, once."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(PGBOUNCER_MISSING)
    host = redis_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    owner = await sandbox.create_user("Owner", language_code="en")
    async with (
        running_pooler(database_url) as pooler,
        _tenant_plane(database_url, role_prefix, "away") as (names, password),
        contextlib.AsyncExitStack() as stack,
    ):
        await ensure_redis_user(redis, names, password=password)
        stack.push_async_callback(drop_redis_user, redis, names)
        await _seed(pooler.url(names.role, password), clock)
        token = f"{7_200_000_000 + secrets.randbelow(999_999)}:{secrets.token_urlsafe(30)[:35].replace('-', 'a')}"
        await sandbox.register_bot(token, username=f"{names.slug}_bot")
        runtime = TenantRuntime(
            slug=names.slug,
            bot_token=token,
            database_url=pooler.url(names.role, password),
            redis_url=f"redis://{names.redis_user}:{password}@{host}/0",
            redis_prefix=names.redis_prefix,
            owner_ids=[owner["id"]],
            locale="en",
            telegram_api_base=emulator.base_url,
            db_transaction_pooler=True,
        )
        ready: asyncio.Future[BotResources] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(run(runtime, stop=stop, clock=clock, on_ready=ready.set_result))
        stack.push_async_callback(_stop_bot, stop, task)
        resources = await asyncio.wait_for(ready, timeout=30)
        customer = await sandbox.user(bot_id=resources.me.id, first_name="Anna", language_code="en")
        newcomer = await sandbox.user(bot_id=resources.me.id, first_name="Vera", language_code="en")
        await _to_summary(customer)  # the bot's pool now holds an open connection to the pooler

        working = pooler.bouncer.config
        await _reloaded(pooler, replace(working, server_port=free_port(0)))
        told, waited = await _told(customer, lambda: customer.click("✅ Confirm"))
        assert UNAVAILABLE in told, told
        assert waited < TOLD_WITHIN_S, f"the customer at Confirm waited {waited:.1f} s"
        told, waited_newcomer = await _told(newcomer, lambda: newcomer.send("/book"))
        assert UNAVAILABLE in told, told
        assert waited_newcomer < TOLD_WITHIN_S, f"the newcomer waited {waited_newcomer:.1f} s"
        # PgBouncer refused (cause "pooler"), or held a new login in its queue past the bot's
        # connection wait ("timeout"): counted either way, one count per request told
        outages = resources.core.outages.snapshot()
        assert outages.get("pooler", 0) >= 1 and sum(outages.values()) >= 2, outages
        assert any(
            r.getMessage() == "database unavailable" and getattr(r, "cause", None) == "pooler"
            for r in caplog.records
        )

        await _reloaded(pooler, working)
        told, waited_back = await _told(customer, lambda: customer.click("✅ Confirm"))
        assert "You are booked" in told, told
        assert waited_back < TOLD_WITHIN_S, (
            f"the first Confirm after recovery took {waited_back:.1f} s"
        )
        assert len(await _bookings(database_url, names)) == 1
        print(  # the figures of docs/SCALING.md
            f"\nPOOLER-OUTAGE told_at_confirm_s={waited:.1f} told_newcomer_s={waited_newcomer:.1f}"
            f" booked_after_back_s={waited_back:.1f} outages={outages}"
        )


CROWD_TENANTS = 30
CROWD_BOUND = 6


async def test_thirty_tenants_booking_at_once_on_six_server_connections_all_get_an_answer(
    database_url: str, role_prefix: str, clock: FakeClock
) -> None:
    """Thirty tenants (thirty roles, so thirty PgBouncer pools) behind a pooler allowed six server
    connections, with the platform's pool settings; two customers of each browse the free times and
    book the same slot at the same moment, through bot-like pools (no statement cache, the bot's
    acquire timeout). Every customer gets an answer in bounded time: booked, told the slot was just
    taken, or told politely to try again (StorageUnavailable, the bot's "temporarily unavailable");
    no slot is held twice, PostgreSQL never sees more than the bound."""
    async with (
        running_pooler(
            database_url, max_server_connections=CROWD_BOUND, pool_per_tenant=1
        ) as pooler,
        contextlib.AsyncExitStack() as stack,
    ):
        gate = asyncio.Semaphore(6)

        async def plane(n: int) -> tuple[TenantNames, str]:
            async with gate:
                names, password = await stack.enter_async_context(
                    _tenant_plane(database_url, role_prefix, f"crowd{n:02d}")
                )
                await _seed(pooler.url(names.role, password), clock)
                return names, password

        planes = await asyncio.gather(*(plane(n) for n in range(CROWD_TENANTS)))
        pools = []
        for names, password in planes:
            pool = await asyncpg.create_pool(
                pooler.url(names.role, password),
                statement_cache_size=0,
                min_size=0,
                max_size=DB_POOL_MAX,
                init=init_connection,
            )
            stack.push_async_callback(pool.close)
            pools.append(pool)
        cores = [
            BookingCore(p, clock=clock, acquire_timeout=DB_ACQUIRE_TIMEOUT_SECONDS) for p in pools
        ]
        customers = [
            [await core.customers.register(2000 + i, name=f"C{i}", locale="en") for i in range(2)]
            for core in cores
        ]

        # both customers of a tenant saw the same first free time on the summary
        services = [(await core.catalogue.list_services())[0] for core in cores]
        slots = [
            next(
                s
                for s in await core.slots.free_slots(
                    service.id, day_from=date(2030, 1, 8), staff_id=None
                )
                if s.start.minute == 0
            )
            for core, service in zip(cores, services, strict=True)
        ]

        async def customer(core: BookingCore, customer_id: int, i: int) -> str:
            n = cores.index(core)
            service, slot = services[n], slots[n]
            try:
                # the day's times again (the Confirm tap follows the browsing), then the booking
                await core.slots.free_slots(service.id, day_from=date(2030, 1, 8), staff_id=None)
                await core.bookings.book(
                    customer_id=customer_id,
                    service_id=service.id,
                    start=slot.start,
                    staff_id=slot.staff_id,
                    actor=Actor.customer(2000 + i),
                    idempotency_key=f"crowd-{customer_id}-{i}",
                )
            except SlotUnavailable:
                return "taken"
            except StorageUnavailable:
                return "refused"
            return "booked"

        watcher = await asyncpg.connect(database_url)
        stack.push_async_callback(watcher.close)
        peak = held = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak, held
            while sampling:
                peak = max(peak, await _server_connections(watcher, role_prefix))
                figures = await read_pooler_figures(pooler.stats_url())
                held = max(held, figures.server_connections)
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        started = asyncio.get_running_loop().time()
        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        customer(core, c.id, i)
                        for core, pair in zip(cores, customers, strict=True)
                        for i, c in enumerate(pair)
                    )
                ),
                timeout=60,
            )
        finally:
            sampling = False
            await sampler
        took = asyncio.get_running_loop().time() - started
        for names, _ in planes:
            booked = await _bookings(database_url, names)
            assert len(booked) == len(set(booked)) <= 1, (names.slug, booked)
    pairs = [outcomes[i : i + 2] for i in range(0, len(outcomes), 2)]
    assert all(p.count("booked") <= 1 for p in pairs), pairs
    assert outcomes.count("booked") + outcomes.count("taken") + outcomes.count("refused") == 60
    assert outcomes.count("booked") >= CROWD_TENANTS // 2, (outcomes, took)
    # PgBouncer never holds more than its bound (the lookup's connections included); PostgreSQL lists
    # the backends it closed to make room (evicted) until their processes exit
    assert 0 < held <= CROWD_BOUND, held
    assert 0 < peak <= CROWD_BOUND + EXITING_BACKENDS, peak
