"""Items the bot could not deliver: retried later after a passing fault, set aside after a lasting one.

Reminders released with a retry time are not claimed before it; reminders, completion cards and
waitlist wishes marked failed keep their error and are never handed out again, while the items
behind them still are (migration 0005).
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tenant_bot.booking import BookingCore
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


async def _reminder_row(pool: asyncpg.Pool, reminder_id: int) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM reminders WHERE id = $1", reminder_id)
    assert row is not None
    return row


async def test_released_reminder_waits_for_its_retry_time(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    clock.now = moscow(MONDAY, 8, 1)
    [first] = await core.reminders.claim_due(worker="a")
    assert first.attempts == 1
    retry_at = clock.now + timedelta(seconds=30)
    assert await core.reminders.release(
        first.id, first.claim_token, retry_at=retry_at, error="TelegramServerError: 502"
    )
    assert await core.reminders.claim_due(worker="b") == []  # not before its retry time
    clock.advance(timedelta(seconds=31))
    [second] = await core.reminders.claim_due(worker="b")
    assert (second.id, second.attempts) == (first.id, 2)
    assert (await _reminder_row(tenant_pool, first.id))["last_error"] == "TelegramServerError: 502"
    assert await core.reminders.mark_sent(second.id, second.claim_token)


async def test_failed_reminder_is_never_claimed_again_and_blocks_nothing(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    boris = await core.customers.register(102)
    await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    await core.bookings.book(
        customer_id=boris.id, service_id=shop.service.id, start=moscow(MONDAY, 11)
    )
    clock.now = moscow(MONDAY, 8, 1)
    [poison] = await core.reminders.claim_due(worker="a")
    assert poison.details.customer_telegram_id == 101
    error = "TelegramBadRequest: Bad Request: chat not found " + "x" * 600
    assert await core.reminders.mark_failed(poison.id, poison.claim_token, error=error)
    assert not await core.reminders.mark_failed(poison.id, poison.claim_token, error=error)
    row = await _reminder_row(tenant_pool, poison.id)
    assert row["status"] == "failed" and row["failed_at"] == clock.now
    assert row["last_error"].startswith("TelegramBadRequest") and len(row["last_error"]) == 500
    clock.now = moscow(MONDAY, 9, 1)
    [behind] = await core.reminders.claim_due(worker="a")  # only Boris's; the failed one stays out
    assert behind.details.customer_telegram_id == 102
    assert await core.reminders.mark_sent(behind.id, behind.claim_token)
    clock.advance(timedelta(minutes=30))  # far past any lease
    assert await core.reminders.claim_due(worker="b") == []
    await core.reminders.expire_stale()
    assert (await _reminder_row(tenant_pool, poison.id))["status"] == "failed"


async def test_completion_card_retry_and_failure(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    first = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    second = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 12)
    )
    clock.now = moscow(MONDAY, 14)
    cards = await core.completion.claim_cards()
    assert [(c.details.booking.id, c.attempts) for c in cards] == [(first.id, 1), (second.id, 1)]
    assert await core.completion.retry_later(
        first.id, attempts=1, retry_at=clock.now + timedelta(minutes=1), error="TimeoutError: "
    )
    assert await core.completion.mark_failed(
        second.id, attempts=1, error="TelegramForbiddenError: blocked"
    )
    assert await core.completion.claim_cards() == []  # the retry is not due yet
    clock.advance(timedelta(minutes=2))
    [again] = await core.completion.claim_cards()
    assert (again.details.booking.id, again.attempts) == (first.id, 2)
    assert await core.completion.claim_cards() == []  # the failed card is never handed out again
    async with tenant_pool.acquire() as conn:
        error = await conn.fetchval(
            "SELECT completion_error FROM bookings WHERE id = $1", second.id
        )
    assert error == "TelegramForbiddenError: blocked"
    # both stay on the owner's to-do list, where they can still be marked
    assert {d.booking.id for d in await core.completion.awaiting()} == {first.id, second.id}


async def test_failed_waitlist_wish_is_not_offered_again(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    boris = await core.customers.register(102)
    vera = await core.customers.register(103)
    ghost = await core.waitlist.join(customer_id=anna.id, service_id=shop.service.id, day=MONDAY)
    await core.waitlist.join(customer_id=boris.id, service_id=shop.service.id, day=MONDAY)
    booking = await core.bookings.book(
        customer_id=vera.id, service_id=shop.service.id, start=moscow(MONDAY, 15)
    )
    assert await core.waitlist.mark_failed(ghost.id, error="TelegramBadRequest: chat not found")
    assert not await core.waitlist.mark_failed(ghost.id, error="again")
    assert [e.customer_id for e in await core.waitlist.candidates_for(booking)] == [boris.id]
    async with tenant_pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM waitlist WHERE id = $1", ghost.id)
    assert row["status"] == "failed" and row["last_error"] == "TelegramBadRequest: chat not found"
    assert row["failed_at"] == clock.now
