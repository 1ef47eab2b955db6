"""Every calendar turns its months and keeps its title: booking, reschedule, owner move, the owner's
schedule and blocking a day share one calendar step."""

from __future__ import annotations

from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text


async def _turns(user, title: str) -> None:
    """The calendar on screen shows January 2030, turns to February and back, keeping ``title``."""
    assert "January 2030" in await buttons(user)
    later = await tap(user, "▶")
    assert title in later["text"]
    labels = await buttons(user)
    assert "February 2030" in labels and "◀" in labels
    back = await tap(user, "◀")
    assert title in back["text"] and "January 2030" in await buttons(user)


async def test_customer_calendars_turn_months(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await _turns(anna, "Choose a day")

    await book_first_slot(anna, time="10:00")
    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    await tap(anna, "🔁 Reschedule")
    await _turns(anna, "Choose a new day")
    times = await tap(anna, "9")
    assert "Wed 9 Jan" in times["text"] and "15:00" in await buttons(anna)


async def test_owner_calendars_turn_months(start_bot, tenant) -> None:
    bot = await start_bot()
    owner = bot.owner
    anna = await bot.customer("Anna")
    await say(owner, "/start")  # the owner's chat, for the new-booking notice
    await book_first_slot(anna, time="10:00")
    await wait_for_text(owner, "New booking", timeout=30)  # the notice, sent by the background loop

    await say(owner, "/admin")
    await tap(owner, "📆 Pick a date")
    await _turns(owner, "Choose a date to see its bookings")
    day = await tap(owner, "8")
    assert "Tue 8 Jan" in day["text"] and "Anna" in day["text"]

    await tap(owner, "Tue 8 Jan 10:00 · Anna")
    await tap(owner, "🔁 Move to another time")
    await _turns(owner, "Choose a new day")
    times = await tap(owner, "9")
    assert "Wed 9 Jan" in times["text"] and "12:00" in await buttons(owner)

    await say(owner, "/admin")
    await tap(owner, "⛔ Blocked time")
    await tap(owner, "⛔ Block a whole day")
    await _turns(owner, "Choose a day to close for booking")
