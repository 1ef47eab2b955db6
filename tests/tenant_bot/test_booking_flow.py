"""A customer books from /start to confirmation; the owner is told; "My bookings" shows it."""

from __future__ import annotations

from datetime import date

from chat_helpers import book_first_slot, buttons, say, tap, wait_for_text


async def test_customer_books_and_owner_is_notified(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(bot.owner, "/start")

    welcome = await say(anna, "/start")
    messages = await anna.messages()
    assert "Barber &lt;Ivan&gt;" not in messages[-2]["text"]  # escaped for Telegram, shown as typed
    assert "Barber <Ivan>" in messages[-2]["text"]
    assert "Tverskaya 1" in messages[-2]["text"]
    assert "📅 Book" in await buttons(anna)
    assert welcome["text"]

    final = await book_first_slot(anna, name="Anna <b>K</b>")
    assert "You are booked" in final["text"]
    assert "Haircut" in final["text"]
    assert "Tue 8 Jan, 10:00" in final["text"]

    note = await wait_for_text(bot.owner, "New booking")
    assert "Anna <b>K</b>" in note["text"]  # the tag arrived as text, not as formatting
    assert "+79161234567" in note["text"]

    await say(anna, "/my")
    assert any("Tue 8 Jan, 10:00 · Haircut" in label for label in await buttons(anna))
    card = await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    assert "confirmed" in card["text"]

    bookings = await tenant.core.bookings.for_day(date(2030, 1, 8))
    assert [b.customer_name for b in bookings] == ["Anna <b>K</b>"]
