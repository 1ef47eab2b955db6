"""One message that cannot be delivered never stops the others, and is set aside rather than retried.

Every fault here is real: a customer or owner whose Telegram chat does not exist (the emulator answers
400 "chat not found", as Telegram does), or an error the emulator is told to answer for the bot's next
``sendMessage`` (a 502, a 400 "message is too long").
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tenant_bot.booking import Actor
from tests.support.chat_helpers import book_first_slot, say, wait_for_text

GHOST_CHAT = 990_000_000_001  # a Telegram user the emulator has never seen
TUESDAY_10_MOSCOW = datetime(2030, 1, 8, 7, 0, tzinfo=UTC)


async def _wake(*bots: Any) -> None:
    for bot in bots:
        bot.resources.background.wake.set()
    await asyncio.sleep(0.3)


async def _rows(tenant: Any, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(tenant.database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _texts(user: Any, needle: str) -> list[str]:
    return [m["text"] for m in await user.messages() if needle in (m["text"] or "")]


async def test_reminder_to_a_missing_chat_is_set_aside_and_the_next_one_sent(
    start_bot, tenant, clock
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="11:00")  # Tue 8 Jan 11:00 Moscow
    ghost = await tenant.core.customers.register(GHOST_CHAT, name="Ghost")
    await tenant.core.bookings.book(  # Tue 10:00: the ghost's reminder falls due first
        customer_id=ghost.id,
        service_id=tenant.service_id,
        start=TUESDAY_10_MOSCOW,
        actor=Actor.customer(GHOST_CHAT),
    )

    clock.advance(timedelta(hours=2, minutes=1))  # Mon 11:01 Moscow: both 24 h reminders are due
    await _wake(bot)
    reminder = await wait_for_text(anna, "Reminder")
    assert "Tue 8 Jan, 11:00" in reminder["text"]
    [failed] = await _rows(
        tenant,
        "SELECT r.* FROM reminders r JOIN bookings b ON b.id = r.booking_id"
        " JOIN customers c ON c.id = b.customer_id WHERE c.telegram_user_id = $1",
        GHOST_CHAT,
    )
    assert failed["status"] == "failed" and "chat not found" in failed["last_error"]
    assert failed["failed_at"] == clock.now and failed["attempts"] == 1
    tally = bot.resources.notifier.tally
    # (the ghost's own booking, made in no chat that showed it, owed its confirmation: set aside too)
    assert tally.failed == {"reminder": 1, "customer_notice": 1} and not tally.retried

    for _ in range(3):  # never retried: no second attempt, no second count
        await _wake(bot)
    [again] = await _rows(tenant, "SELECT * FROM reminders WHERE id = $1", failed["id"])
    assert again["attempts"] == 1 and again["status"] == "failed"
    assert tally.failed == {"reminder": 1, "customer_notice": 1}
    assert len(await _texts(anna, "Reminder")) == 1


async def test_reminder_after_a_telegram_5xx_is_retried_later_and_sent_once(
    start_bot, tenant, clock, sandbox
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")
    await wait_for_text(bot.owner, "New booking")  # sent before the fault is armed
    clock.advance(timedelta(hours=1, minutes=1))  # the 24 h reminder is due
    await sandbox.inject_fault(bot.bot_id, method="sendMessage", error_code=502, count=1)
    await _wake(bot)
    [row] = await _rows(tenant, "SELECT * FROM reminders")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["claimed_until"] == clock.now + timedelta(seconds=30)  # the backoff
    assert row["claim_token"] is None and row["last_error"].startswith("TelegramServerError")
    assert bot.resources.notifier.tally.retried == {"reminder": 1}

    await _wake(bot)  # not before its retry time
    assert await _texts(anna, "Reminder") == []
    clock.advance(timedelta(seconds=31))
    await _wake(bot)
    await wait_for_text(anna, "Reminder")
    [row] = await _rows(tenant, "SELECT * FROM reminders")
    assert row["status"] == "sent" and row["attempts"] == 2
    await _wake(bot)
    assert len(await _texts(anna, "Reminder")) == 1
    assert not bot.resources.notifier.tally.failed


async def test_completion_card_that_telegram_refuses_does_not_stop_the_next(
    start_bot, tenant, clock, sandbox
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    boris = await bot.customer("Boris")
    await book_first_slot(anna, time="10:00")
    await book_first_slot(boris, name="Boris", phone="+79161234568", time="12:00")
    await _owner_told(bot, 2)  # the owner's notices go out before the fault is armed
    clock.advance(timedelta(days=1, hours=4, minutes=5))  # Tue 13:05 Moscow: both have ended
    await sandbox.inject_fault(
        bot.bot_id,
        method="sendMessage",
        error_code=400,
        description="Bad Request: message is too long",
        count=1,
    )
    await _wake(bot)
    card = await wait_for_text(bot.owner, "Did the customer come?")
    assert "Boris" in card["text"]  # Anna's card (the first) was refused, Boris's still came
    rows = await _rows(
        tenant,
        "SELECT c.name, b.completion_prompted_at, b.completion_error FROM bookings b"
        " JOIN customers c ON c.id = b.customer_id ORDER BY b.starts_at",
    )
    assert [r["name"] for r in rows] == ["Anna", "Boris"]
    assert "message is too long" in rows[0]["completion_error"]
    assert rows[1]["completion_error"] is None
    assert all(r["completion_prompted_at"] is not None for r in rows)
    assert bot.resources.notifier.tally.failed == {"completion_card": 1}
    count = len(await bot.owner.messages())
    await _wake(bot)
    assert len(await bot.owner.messages()) == count  # the refused card is not tried again


async def test_waitlist_notice_to_a_missing_chat_marks_the_wish_and_tells_the_rest(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    boris = await bot.customer("Boris")
    await say(boris, "/start")
    core = tenant.core
    ghost = await core.customers.register(GHOST_CHAT, name="Ghost")
    boris_customer = await core.customers.register(boris.id, name="Boris")
    vera = await core.customers.register(GHOST_CHAT + 1, name="Vera")
    ghost_wish = await core.waitlist.join(
        customer_id=ghost.id, service_id=tenant.service_id, day=TUESDAY_10_MOSCOW.date()
    )
    await core.waitlist.join(
        customer_id=boris_customer.id,
        service_id=tenant.service_id,
        day=TUESDAY_10_MOSCOW.date(),
    )
    booking = await core.bookings.book(
        customer_id=vera.id, service_id=tenant.service_id, start=TUESDAY_10_MOSCOW
    )
    cancelled = await core.bookings.cancel(booking.id, actor=Actor.owner())

    notifier = bot.resources.notifier
    told = await notifier.offer_freed_time(cancelled, settings=await core.catalogue.get_settings())
    assert told == 1
    await wait_for_text(boris, "A time has freed up")
    [wish] = await _rows(tenant, "SELECT * FROM waitlist WHERE id = $1", ghost_wish.id)
    assert wish["status"] == "failed" and "chat not found" in wish["last_error"]
    assert notifier.tally.failed == {"waitlist_notice": 1}


async def _owner_told(bot, count: int) -> None:
    """Wait until the owner has ``count`` new-booking notices (the background loop sends them)."""
    for _ in range(200):
        if len(await _texts(bot.owner, "New booking")) >= count:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the owner's notices did not arrive")
