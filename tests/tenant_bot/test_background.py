"""Reminders are sent once at their time even with two bot processes; ended bookings get a card."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from tenant_bot.booking import BookingStatus
from tests.support.chat_helpers import book_first_slot, say, tap, wait_for_text


async def _wake(*bots) -> None:
    for bot in bots:
        bot.resources.background.wake.set()
    await asyncio.sleep(0.3)


async def test_reminder_sent_once_with_two_processes(start_bot, tenant, clock) -> None:
    main = await start_bot()
    second = await start_bot(receive=False)  # a second process of the same tenant: background only
    anna = await main.customer("Anna")
    await book_first_slot(
        anna, time="10:00"
    )  # Tue 8 Jan 10:00 Moscow; reminders 24 h and 2 h ahead

    await _wake(main, second)
    assert not [m for m in await anna.messages() if "Reminder" in (m["text"] or "")]

    clock.advance(timedelta(hours=1, minutes=1))  # Mon 7 Jan 10:01 Moscow: the 24 h reminder is due
    for _ in range(3):
        await _wake(main, second)
    reminder = await wait_for_text(anna, "Reminder")
    assert "Tue 8 Jan, 10:00" in reminder["text"]
    assert len([m for m in await anna.messages() if "Reminder" in (m["text"] or "")]) == 1

    clock.advance(timedelta(hours=22))  # Tue 8 Jan 08:01: the 2 h reminder
    for _ in range(3):
        await _wake(second, main)
    await asyncio.sleep(0.2)
    assert len([m for m in await anna.messages() if "Reminder" in (m["text"] or "")]) == 2


async def test_completion_card_marks_done(start_bot, tenant, clock) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(bot.owner, "/start")
    await book_first_slot(anna, time="10:00")
    clock.advance(timedelta(days=1, hours=2, minutes=5))  # Tue 8 Jan 11:05 Moscow: it has ended
    await _wake(bot)
    card = await wait_for_text(bot.owner, "Did the customer come?")
    assert "Anna" in card["text"]
    await tap(bot.owner, "✅ Came")
    [details] = await tenant.core.bookings.for_day(date(2030, 1, 8))
    assert details.booking.status is BookingStatus.DONE
    count = len(await bot.owner.messages())
    await _wake(bot)
    assert len(await bot.owner.messages()) == count  # asked once only
