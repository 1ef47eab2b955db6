"""Two customers tap one slot at once; one customer taps "Confirm" twice."""

from __future__ import annotations

import asyncio
from datetime import date

from tests.support.chat_helpers import bot_view, buttons, say, settle, tap


async def _to_summary(user, time: str = "10:00") -> None:
    await say(user, "/book")
    await tap(user, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(user, "8")
    await tap(user, time)
    await say(user, user.name)
    await say(user, "+7 916 123-45-67")


async def test_two_customers_one_slot_one_wins(start_bot, tenant) -> None:
    bot = await start_bot()
    anna, boris = await bot.customer("Anna"), await bot.customer("Boris")
    anna.name, boris.name = "Anna", "Boris"
    await asyncio.gather(_to_summary(anna), _to_summary(boris))
    before = await asyncio.gather(bot_view(anna), bot_view(boris))
    await asyncio.gather(anna.click("✅ Confirm"), boris.click("✅ Confirm"))
    finals = await asyncio.gather(settle(anna, before[0]), settle(boris, before[1]))

    texts = [f["text"] for f in finals]
    assert sum("You are booked" in t for t in texts) == 1
    loser = anna if "You are booked" not in texts[0] else boris
    loser_final = finals[0] if loser is anna else finals[1]
    assert "just taken" in loser_final["text"]
    fresh = await buttons(loser)
    assert "10:00" not in fresh and "11:00" in fresh  # fresh slots, without the taken one
    answers = (await loser.chat())["callback_answers"]
    assert any("just taken" in (a.get("text") or "") for a in answers)
    assert len(await tenant.core.bookings.for_day(date(2030, 1, 8))) == 1


async def test_double_confirm_gives_one_booking(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    anna.name = "Anna"
    await _to_summary(anna)
    summary = await anna.last_message()
    data = next(
        b["callback_data"]
        for row in summary["inline_keyboard"]
        for b in row
        if b["text"] == "✅ Confirm"
    )
    before = await bot_view(anna)
    await asyncio.gather(anna.click(data=data), anna.click(data=data))
    await settle(anna, before)
    await asyncio.sleep(0.3)
    assert len(await tenant.core.bookings.for_day(date(2030, 1, 8))) == 1
    messages = [m["text"] or "" for m in await anna.messages() if m["from"] == "bot"]
    assert not any("Something went wrong" in t for t in messages)
    calendar_files = [m for m in await anna.messages() if m["document"]]
    assert len(calendar_files) == 1  # one booking, one calendar file
