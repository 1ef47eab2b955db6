"""Group commit: concurrent bookings share a transaction but never each other's outcome."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg

from fleet.data_plane import TenantNames
from tenant_bot.booking import Actor, Booking, BookingCore
from tenant_bot.booking.batching import BookingWriter
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import BookingError, StorageUnavailable
from tenant_bot.booking.repositories.bookings import SlotRequest
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


class CountingDatabase(Database):
    """The real database boundary, counting the connections it hands out (one per batch)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.connections = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        self.connections += 1
        async with super().connection() as conn:
            yield conn


def _request(shop: Shop, customer_id: int, hour: int, *, key: str | None = None) -> SlotRequest:
    start = moscow(MONDAY, hour)
    return SlotRequest(
        customer_id=customer_id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        occupied_from=start,
        occupied_until=start + timedelta(hours=1),
        status="confirmed",
        comment="",
        active_limit=None,
        actor="owner",
        actor_id=None,
        reminder_offsets=[120],
        idempotency_key=key,
        local_day=MONDAY,
        catalogue_version=None,
        capacity=1,
    )


async def _results(calls: list) -> tuple[list[Booking], Counter[str]]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, BookingError)
    ]
    assert not unexpected, unexpected[:3]
    return (
        [r for r in results if isinstance(r, Booking)],
        Counter(r.code for r in results if isinstance(r, BookingError)),
    )


async def test_concurrent_requests_go_in_few_transactions(
    tenant_pool: asyncpg.Pool, shop: Shop, core: BookingCore, clock: FakeClock
) -> None:
    people = [await core.customers.register(2000 + i) for i in range(8)]
    db = CountingDatabase(tenant_pool)
    writer = BookingWriter(db, clock=clock)
    outcomes = await asyncio.gather(
        *(writer.write(_request(shop, p.id, 9 + i)) for i, p in enumerate(people))
    )
    assert [o for o, _ in outcomes] == ["ok"] * 8
    assert db.connections == 1  # all eight arrived together: one batch, one commit
    assert [b.starts_at for _, b in outcomes if b] == [moscow(MONDAY, 9 + i) for i in range(8)]


async def test_each_request_of_a_batch_gets_its_own_outcome(
    tenant_pool: asyncpg.Pool, shop: Shop, core: BookingCore, clock: FakeClock
) -> None:
    anna, boris = await core.customers.register(101), await core.customers.register(102)
    writer = BookingWriter(Database(tenant_pool), clock=clock)
    limited = _request(shop, boris.id, 15)._replace(active_limit=0)
    outcomes = await asyncio.gather(
        writer.write(_request(shop, anna.id, 10)),
        writer.write(_request(shop, boris.id, 10)),  # the same slot, later in the batch
        writer.write(_request(shop, anna.id, 12, key="tap-1")),
        writer.write(_request(shop, anna.id, 13, key="tap-1")),  # the key names a booking now
        writer.write(limited),
        writer.write(_request(shop, boris.id, 11)),
    )
    assert [o for o, _ in outcomes] == ["ok", "taken", "ok", "duplicate", "limit", "ok"]
    rows = await tenant_pool.fetch("SELECT customer_id, starts_at FROM bookings ORDER BY starts_at")
    assert [(r["customer_id"], r["starts_at"]) for r in rows] == [
        (anna.id, moscow(MONDAY, 10)),
        (boris.id, moscow(MONDAY, 11)),
        (anna.id, moscow(MONDAY, 12)),
    ]
    history = await tenant_pool.fetchval("SELECT count(*) FROM booking_history")
    assert history == 3  # the refused requests left nothing behind


async def test_a_request_that_breaks_its_batch_fails_alone(
    core: BookingCore, shop: Shop, tenant_pool: asyncpg.Pool
) -> None:
    people = [await core.customers.register(3000 + i) for i in range(5)]
    owner = Actor.owner(1)
    calls = [
        core.bookings.book(
            customer_id=p.id,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 9 + i),
        )
        for i, p in enumerate(people)
    ]
    # an owner booking skips the customer lock, so a customer that does not exist surfaces only
    # as a foreign key violation, which aborts the whole batch
    calls.insert(
        2,
        core.bookings.book(
            customer_id=999_999,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 16),
            actor=owner,
        ),
    )
    won, errors = await _results(calls)
    assert len(won) == 5
    assert errors == Counter({"not_found": 1})
    assert await tenant_pool.fetchval("SELECT count(*) FROM bookings") == 5


async def _until_a_writer_waits_for_staff(pool: asyncpg.Pool, staff_id: int) -> None:
    for _ in range(1000):  # 10 s at most
        if await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND (classid::bigint << 32 | objid::bigint) = staff_lock_key($1)",
            staff_id,
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the batch never waited for the lock")


async def test_a_caller_cancelled_before_its_batch_is_sent_books_nothing(
    core: BookingCore, shop: Shop, tenant_pool: asyncpg.Pool, clock: FakeClock
) -> None:
    anna, boris = await core.customers.register(101), await core.customers.register(102)
    writer = BookingWriter(Database(tenant_pool), clock=clock)
    async with tenant_pool.acquire() as blocker, blocker.transaction():
        # hold Ivan's writer lock: the first batch waits in the database
        await blocker.execute("SELECT pg_advisory_xact_lock(staff_lock_key($1))", shop.ivan.id)
        first = asyncio.create_task(writer.write(_request(shop, anna.id, 10)))
        await _until_a_writer_waits_for_staff(tenant_pool, shop.ivan.id)
        second = asyncio.create_task(writer.write(_request(shop, boris.id, 11)))
        await asyncio.sleep(0.05)
        second.cancel()
    assert (await first)[0] == "ok"
    assert second.cancelled()
    rows = await tenant_pool.fetch("SELECT customer_id FROM bookings")
    assert [r["customer_id"] for r in rows] == [anna.id]


async def test_two_bot_processes_batching_at_once_never_deadlock(
    tenant_pool: asyncpg.Pool, shop: Shop, clock: FakeClock
) -> None:
    """Two cores (two bot processes) write batches that need the same staff locks and customer
    rows in different orders; the global lock order keeps them out of deadlock."""
    first, second = BookingCore(tenant_pool, clock=clock), BookingCore(tenant_pool, clock=clock)
    people = [await first.customers.register(4000 + i) for i in range(12)]
    deadlocks_before = await tenant_pool.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    calls = []
    for round_ in range(6):
        for i, p in enumerate(people):
            core = first if (i + round_) % 2 else second
            staff = shop.ivan if (i + round_) % 3 else shop.olga
            calls.append(
                core.bookings.book(
                    customer_id=p.id if round_ % 2 else people[-1 - i].id,
                    service_id=shop.service.id,
                    staff_id=staff.id,
                    start=moscow(MONDAY + timedelta(days=round_ % 3), 9 + i % 9),
                    actor=Actor.customer(p.telegram_user_id),
                )
            )
    won, errors = await _results(calls)
    assert set(errors) <= {"slot_taken", "limit_reached"}
    assert won and len(won) == await tenant_pool.fetchval("SELECT count(*) FROM bookings")
    overlapping = await tenant_pool.fetchval(
        """SELECT count(*) FROM bookings a JOIN bookings b
           ON a.staff_id = b.staff_id AND a.id < b.id AND a.occupied && b.occupied"""
    )
    assert overlapping == 0
    per_customer = await tenant_pool.fetchval(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM bookings GROUP BY customer_id) AS c"
    )
    assert per_customer <= 3  # the shop's limit, under two writers
    deadlocks_after = await tenant_pool.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    assert deadlocks_after == deadlocks_before


async def test_every_waiting_caller_hears_when_the_database_is_unreachable(
    database_url: str, tenant_names: TenantNames, shop: Shop, clock: FakeClock
) -> None:
    closed = await asyncpg.create_pool(
        database_url, user=tenant_names.role, password="unused", min_size=1, max_size=2
    )
    await closed.close()
    writer = BookingWriter(Database(closed), clock=clock)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(writer.write(_request(shop, 1, 9 + i)) for i in range(3)), return_exceptions=True
        ),
        timeout=10,
    )
    assert [type(r) for r in results] == [StorageUnavailable] * 3
