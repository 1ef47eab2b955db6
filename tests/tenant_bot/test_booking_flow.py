"""A customer books from /start to confirmation; the owner is told; "My bookings" shows it."""

from __future__ import annotations

from datetime import date

from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text


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


async def test_staff_choice_contact_button_and_help(start_bot, tenant) -> None:
    from tests.support.chat_helpers import bot_view, settle

    olga = await tenant.core.catalogue.create_staff(name="Olga", service_ids=[tenant.service_id])
    from tenant_bot.booking import WorkInterval

    await tenant.core.catalogue.set_working_hours(olga.id, 1, [WorkInterval.parse("12:00-14:00")])
    bot = await start_bot()
    anna = await bot.customer("Anna", phone_number="+79031234567")
    help_text = await say(anna, "/help")
    assert "/book" in help_text["text"] and "/admin" not in help_text["text"]

    await say(anna, "/book")
    staff_screen = await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    assert "Who would you like to see?" in staff_screen["text"]
    assert await buttons(anna) == ["Anyone available", "Ivan", "Olga", "« Back"]
    await tap(anna, "Olga")
    await tap(anna, "8")
    assert [b for b in await buttons(anna) if ":" in b] == ["12:00", "12:30", "13:00"]
    await tap(anna, "12:30")
    await say(anna, "Anna")
    assert "📱 Share my phone number" in await anna.reply_keyboard()
    before = await bot_view(anna)
    await anna.press("📱 Share my phone number")
    summary = await settle(anna, before)
    assert "+79031234567" in summary["text"] and "Olga" in summary["text"]
    final = await tap(anna, "✅ Confirm")
    assert "Olga" in final["text"] and "Tue 8 Jan, 12:30" in final["text"]
    assert await anna.reply_keyboard() == []  # the contact keyboard is gone
