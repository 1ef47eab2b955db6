"""Reminders: created with the booking, moved and cancelled with it, each sent once, never lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import asyncpg

from tenant_bot.booking import Actor, BookingCore
from tenant_bot.booking.repositories import reminders as reminders_repo
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


async def _reminders(pool: asyncpg.Pool, booking_id: int) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await reminders_repo.for_booking(conn, booking_id)


async def _offsets(pool: asyncpg.Pool, booking_id: int) -> dict[int, str]:
    return {r["offset_minutes"]: r["status"] for r in await _reminders(pool, booking_id)}


async def _due_at(pool: asyncpg.Pool, booking_id: int, offset: int) -> object:
    [due] = [
        r["due_at"] for r in await _reminders(pool, booking_id) if r["offset_minutes"] == offset
    ]
    return due


async def test_created_moved_and_cancelled_with_the_booking(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    # Monday 10:00 MSK: the 24 h reminder would be due before "now" (Sunday 12:00 MSK), so only 2 h
    soon = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    assert await _offsets(tenant_pool, soon.id) == {120: "pending"}
    later = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY + timedelta(days=2), 10),
    )
    assert await _offsets(tenant_pool, later.id) == {1440: "pending", 120: "pending"}
    due = await _due_at(tenant_pool, later.id, 120)
    assert due == moscow(MONDAY + timedelta(days=2), 8)
    await core.bookings.reschedule(
        later.id, new_start=moscow(MONDAY + timedelta(days=3), 12), actor=Actor.owner()
    )
    due = await _due_at(tenant_pool, later.id, 120)
    assert due == moscow(MONDAY + timedelta(days=3), 10)
    await core.bookings.cancel(later.id, actor=Actor.owner())
    assert await _offsets(tenant_pool, later.id) == {1440: "cancelled", 120: "cancelled"}


async def test_claim_send_once(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101, name="Anna", locale="ru")
    booking = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    assert await core.reminders.claim_due() == []  # not due yet
    clock.now = moscow(MONDAY, 8, 1)
    [claimed] = await core.reminders.claim_due(worker="a")
    assert claimed.details.booking.id == booking.id and claimed.offset_minutes == 120
    assert claimed.details.customer_telegram_id == 101 and claimed.details.customer_locale == "ru"
    assert await core.reminders.claim_due(worker="b") == []  # leased to "a"
    assert await core.reminders.mark_sent(claimed.id, claimed.claim_token)
    assert not await core.reminders.mark_sent(claimed.id, claimed.claim_token)
    clock.advance(timedelta(minutes=30))
    assert await core.reminders.claim_due(worker="b") == []


async def test_two_concurrent_claimers_send_each_once(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    quick = await core.catalogue.create_service(name="Trim", duration_minutes=30)
    for member in (shop.ivan, shop.olga):
        await core.catalogue.set_staff_services(member.id, [quick.id])
    wednesday = MONDAY + timedelta(days=2)
    people = [await core.customers.register(500 + i) for i in range(30)]
    for i, p in enumerate(people):
        await core.bookings.book(
            customer_id=p.id,
            service_id=quick.id,
            staff_id=(shop.ivan, shop.olga)[i % 2].id,
            start=moscow(wednesday, 9) + timedelta(minutes=30 * (i // 2)),
        )
    clock.now = moscow(wednesday, 8, 30)  # every 24 h reminder and the first 2 h ones are due
    due = {
        (r["id"], offset)
        for r in await tenant_pool.fetch("SELECT id FROM bookings")
        for offset, due_at, status in await _reminders(tenant_pool, r["id"])
        if status == "pending" and due_at <= clock.now
    }
    assert len(due) > 30
    sent: Counter[tuple[int, int]] = Counter()
    ids: Counter[int] = Counter()

    async def claimer(name: str) -> None:
        while batch := await core.reminders.claim_due(worker=name, limit=3):
            for reminder in batch:
                await asyncio.sleep(0)  # "sending" lets the other claimers run
                assert await core.reminders.mark_sent(reminder.id, reminder.claim_token)
                sent[(reminder.details.booking.id, reminder.offset_minutes)] += 1
                ids[reminder.id] += 1

    await asyncio.gather(claimer("a"), claimer("b"), claimer("c"))
    assert set(sent) == due and set(sent.values()) == {1} and set(ids.values()) == {1}


async def test_a_claimer_that_dies_does_not_lose_the_reminder(
    core: BookingCore,
    shop: Shop,
    clock: FakeClock,
    database_url: str,
    tenant_pool: asyncpg.Pool,
    pool: asyncpg.Pool,
) -> None:
    anna = await core.customers.register(101)
    await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    clock.now = moscow(MONDAY, 8, 5)
    # 1) killed inside its claiming transaction: the claim rolls back with it
    async with tenant_pool.acquire() as doomed:
        pid = await doomed.fetchval("SELECT pg_backend_pid()")
        tx = doomed.transaction()
        await tx.start()
        claimed = await reminders_repo.claim_due(
            doomed,
            now=clock.now,
            lease_until=clock.now + timedelta(minutes=5),
            token="doomed",
            limit=10,
        )
        assert len(claimed) == 1
        assert await core.reminders.claim_due(worker="other") == []  # locked: skipped, not doubled
        await pool.execute("SELECT pg_terminate_backend($1)", pid)
        await asyncio.sleep(0.2)
    # 2) claimed and committed, then died before sending: the lease expires and it is claimed again
    [first] = await core.reminders.claim_due(worker="crashy", lease=timedelta(minutes=2))
    assert await core.reminders.claim_due(worker="other") == []
    clock.advance(timedelta(minutes=3))
    [second] = await core.reminders.claim_due(worker="other")
    assert second.id == first.id and second.claim_token != first.claim_token
    assert not await core.reminders.mark_sent(first.id, first.claim_token)  # the late one loses
    assert await core.reminders.mark_sent(second.id, second.claim_token)


async def test_release_and_stale(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    booking = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    clock.now = moscow(MONDAY, 8, 5)
    [claimed] = await core.reminders.claim_due()
    assert await core.reminders.release(claimed.id, claimed.claim_token)
    [again] = await core.reminders.claim_due()
    assert again.id == claimed.id
    clock.now = moscow(MONDAY, 10, 5)  # the booking started: too late to remind
    assert await core.reminders.claim_due() == []
    assert await core.reminders.expire_stale() == 1
    assert await _offsets(tenant_pool, booking.id) == {120: "cancelled"}
