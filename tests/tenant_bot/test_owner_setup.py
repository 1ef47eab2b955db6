"""Issue 16 item 6: the owner's set-up and what customers then see, read as a person reads the chat.

Hours typed as people write them (and clear errors), hours copied to other days, a solo owner who is
the staff member without adding themself, no "anyone available" with one staff member, closed days
not shown as fully booked, came / did not come only after the start, the day's count without the
cancelled, a cancel question naming the booking, and a confirm step before a reschedule moves it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tenant_bot.booking import Actor, WorkInterval
from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text

TUE, WED, THU = date(2030, 1, 8), date(2030, 1, 9), date(2030, 1, 10)
NINE_TO_SIX = [WorkInterval(9 * 60, 18 * 60)]


async def _open_hours(owner, staff_name: str) -> None:
    await say(owner, "/admin")
    await tap(owner, "👥 Staff & hours")
    await tap(owner, staff_name)
    await tap(owner, "🕘 Working hours")


async def _book(tenant, telegram_id: int, name: str, hour: int, day: date = TUE) -> int:
    """A booking made in the core for another customer, at ``hour`` Moscow time (UTC+3)."""
    customer = await tenant.core.customers.register(telegram_id, name=name, phone="+79160000000")
    booking = await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        start=datetime(day.year, day.month, day.day, hour - 3, tzinfo=UTC),
    )
    return booking.id


async def test_hours_are_read_as_people_type_them_and_nonsense_is_explained(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    owner = bot.owner
    await _open_hours(owner, "Ivan")
    typed = {
        "Mon": "9-18",
        "Tue": "9:00-18:00",
        "Wed": "9:00–18:00",  # an en dash, as phones type it
        "Thu": "09.00 - 18.00",
        "Fri": "9-13, 14-18",
    }
    for day, text in typed.items():
        await tap(owner, f"{day}: 10:00-18:00")
        saved = await say(owner, text)
        assert saved["text"].startswith("✅ Saved")
        await tap(owner, "✔ Done")
    labels = await buttons(owner)
    for day in ("Mon", "Tue", "Wed", "Thu"):
        assert f"{day}: 09:00-18:00" in labels
    assert "Fri: 09:00-13:00, 14:00-18:00" in labels
    week = await tenant.core.catalogue.get_working_hours(tenant.staff_id)
    assert [week[wd] for wd in range(4)] == [NINE_TO_SIX] * 4

    await tap(owner, "Sat: 10:00-18:00")
    end_first = await say(owner, "18-9")
    assert "In «18-9» the end is not after the start" in end_first["text"]
    assert "<code>" not in end_first["text"] and "9:00-18:00" in end_first["text"]
    assert "The time in «25:00-26:00» does not exist" in (await say(owner, "25:00-26:00"))["text"]
    assert "could not read «from nine»" in (await say(owner, "from nine"))["text"]
    assert "overlap: 09:00-13:00, 12:00-18:00" in (await say(owner, "9-13, 12-18"))["text"]
    week = await tenant.core.catalogue.get_working_hours(tenant.staff_id)
    assert week[5] == [WorkInterval(600, 1080)]  # nothing half-written
    await say(owner, "-")  # still typing Saturday: a day off
    assert 5 not in await tenant.core.catalogue.get_working_hours(tenant.staff_id)


async def test_hours_are_copied_to_weekdays_every_day_or_picked_days(start_bot, tenant) -> None:
    bot = await start_bot()
    owner = bot.owner
    await _open_hours(owner, "Ivan")
    await tap(owner, "Mon: 10:00-18:00")
    offer = await say(owner, "9-18")
    assert "Mon: 09:00-18:00" in offer["text"] and "Copy these hours" in offer["text"]
    assert await buttons(owner) == ["📋 Mon–Fri", "📋 Every day", "📋 Pick days…", "✔ Done"]
    copied = await tap(owner, "📋 Mon–Fri")
    assert "copied to Tue, Wed, Thu, Fri" in copied["text"]
    labels = await buttons(owner)
    assert [f"{d}: 09:00-18:00" in labels for d in ("Mon", "Tue", "Wed", "Thu", "Fri")] == [
        True
    ] * 5
    assert "Sat: 10:00-18:00" in labels and "Sun: 10:00-18:00" in labels

    await tap(owner, "Sat: 10:00-18:00")
    await say(owner, "10-14")
    picking = await tap(owner, "📋 Pick days…")
    assert "Copy the hours of Sat to which days?" in picking["text"]
    assert "▫️ Sun" in await buttons(owner) and "▫️ Sat" not in await buttons(owner)
    await tap(owner, "▫️ Sun")
    assert "✅ Sun" in await buttons(owner)
    done = await tap(owner, "📋 Copy")
    assert "copied to Sun" in done["text"] and "Sun: 10:00-14:00" in await buttons(owner)

    await tap(owner, "Wed: 09:00-18:00")
    await say(owner, "8-20")
    await tap(owner, "📋 Every day")
    assert all(label.endswith(": 08:00-20:00") for label in (await buttons(owner))[:7])
    week = await tenant.core.catalogue.get_working_hours(tenant.staff_id)
    assert week == {wd: [WorkInterval(480, 1200)] for wd in range(7)}


@pytest.mark.parametrize("tenant", ["bare"], indirect=True)
async def test_a_solo_owner_is_the_staff_member_without_adding_themself(start_bot, tenant) -> None:
    bot = await start_bot()
    owner = bot.owner
    await say(owner, "/admin")
    team = await tap(owner, "👥 Staff & hours")
    assert "Staff: 1" in team["text"]
    assert "Owner" in await buttons(owner)  # the owner's Telegram name

    await say(owner, "/admin")
    await tap(owner, "💈 Services")
    await tap(owner, "➕ Add a service")
    await say(owner, "Haircut; 60; 1500")
    await say(owner, "/admin")
    await tap(owner, "👥 Staff & hours")
    card = await tap(owner, "Owner")
    assert "Services: Haircut" in card["text"]  # the staff member made first provides it too
    await tap(owner, "🕘 Working hours")
    await tap(owner, "Mon: day off")
    await say(owner, "10-18")
    await tap(owner, "📋 Every day")
    [member] = await tenant.core.catalogue.list_staff(active_only=False)
    assert member.name == "Owner" and member.telegram_user_id == owner.id
    assert len(member.service_ids) == 1

    anna = await bot.customer("Anna")
    await say(anna, "/book")
    calendar = await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    assert "Choose a day" in calendar["text"]  # no "who would you like to see?" step
    assert "Anyone available" not in await buttons(anna)
    await tap(anna, "8")
    await tap(anna, "10:00")
    await say(anna, "Anna")
    summary = await say(anna, "+79161234567")
    assert "👤 Owner" in summary["text"] and "anyone" not in summary["text"]
    booked = await tap(anna, "✅ Confirm")
    assert "You are booked" in booked["text"] and "Owner" in booked["text"]


async def test_one_staff_member_is_named_not_anyone_available(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(anna, "8")
    await tap(anna, "10:00")
    await say(anna, "Anna")
    summary = await say(anna, "+79161234567")
    assert "👤 Ivan" in summary["text"] and "anyone" not in summary["text"]


async def test_closed_days_are_closed_not_fully_booked(start_bot, tenant, clock) -> None:
    await tenant.core.catalogue.set_working_hours(tenant.staff_id, 6, [])  # Sundays off
    await tenant.core.catalogue.set_date_exception(THU, note="holiday")  # closed for everyone
    for i, hour in enumerate(range(10, 18)):  # Tuesday fully booked
        await _book(tenant, 900_000 + i, f"C{i}", hour)
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    calendar = await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    assert "✕ — closed" in calendar["text"]
    labels = await buttons(anna)
    assert "·8·" in labels and "9" in labels  # booked up; free
    for closed in ("10", "13", "20"):
        assert closed not in labels and f"·{closed}·" not in labels
    assert labels.count("✕") == 4  # Thu 10, Sun 13, 20, 27

    query = await anna.click("✕")
    answer = await anna.callback_answer(query)
    assert answer["text"] == "We are closed on Thu 10 Jan. Please choose another day."
    assert answer["show_alert"]
    full = await tap(anna, "·8·")
    assert "No free time" in full["text"]  # a booked-up day still offers the waitlist

    clock.advance(timedelta(hours=11))  # Mon 7 Jan 20:00 Moscow: today's last start has passed
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    labels = await buttons(anna)
    assert "7" not in labels and "·7·" not in labels and labels.count("✕") == 5
    answer = await anna.callback_answer(await anna.click("✕"))
    assert answer["text"] == "No more times to book on Mon 7 Jan. Please choose another day."


async def test_came_and_no_show_appear_only_once_the_booking_started(
    start_bot, tenant, clock
) -> None:
    bot = await start_bot()
    owner = bot.owner
    await say(owner, "/start")
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")  # Tue 8 Jan 10:00 Moscow
    note = await wait_for_text(owner, "New booking")
    labels = [b["text"] for row in note["inline_keyboard"] for b in row]
    assert "✖ Cancel booking" in labels
    assert "✅ Came" not in labels and "🚫 Did not come" not in labels

    await say(owner, "/admin")
    await tap(owner, "📋 Tomorrow")
    await tap(owner, "Tue 8 Jan 10:00 · Anna")
    early = await buttons(owner)
    assert "✅ Came" not in early and "🚫 Did not come" not in early

    clock.advance(timedelta(days=1, hours=1))  # Tue 8 Jan 10:00 Moscow: the start
    await say(owner, "/admin")
    await tap(owner, "📋 Today")
    await tap(owner, "Tue 8 Jan 10:00 · Anna")
    started = await buttons(owner)
    assert "✅ Came" in started and "🚫 Did not come" in started


async def test_the_day_schedule_counts_active_bookings_only(start_bot, tenant) -> None:
    await _book(tenant, 900_001, "Boris", 11)
    cancelled = await _book(tenant, 900_002, "Carl", 12)
    await tenant.core.bookings.cancel(cancelled, actor=Actor.owner())
    bot = await start_bot()
    await say(bot.owner, "/admin")
    day = await tap(bot.owner, "📋 Tomorrow")
    assert "Tue 8 Jan: 1 booking" in day["text"]
    assert "✖ Cancelled: 1" in day["text"]
    booked, gone = day["text"].split("✖ Cancelled: 1")
    assert "Boris" in booked and "Carl" not in booked and "Carl" in gone


async def test_the_cancel_question_names_the_booking(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")
    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    asked = await tap(anna, "✖ Cancel booking")
    assert asked["text"].startswith("Cancel this booking?")
    for fact in ("Haircut", "👤 Ivan", "🕒 Tue 8 Jan, 10:00"):
        assert fact in asked["text"]
    assert await buttons(anna) == ["Yes, cancel it", "No, keep it"]


async def test_reschedule_shows_old_and_new_time_before_moving(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")
    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    await tap(anna, "🔁 Reschedule")
    await tap(anna, "9")
    asked = await tap(anna, "15:00")
    assert "Move your booking?" in asked["text"]
    assert "Tue 8 Jan, 10:00 → Wed 9 Jan, 15:00" in asked["text"]
    assert "Haircut" in asked["text"] and "Ivan" in asked["text"]
    assert await buttons(anna) == ["✅ Yes, move it", "« Back"]
    [still] = await tenant.core.bookings.for_day(TUE)  # nothing moved yet
    assert still.booking.starts_at.hour == 7

    times = await tap(anna, "« Back")
    assert "Wed 9 Jan" in times["text"] and "16:00" in await buttons(anna)
    await tap(anna, "16:00")
    moved = await tap(anna, "✅ Yes, move it")
    assert "Moved" in moved["text"] and "Wed 9 Jan, 16:00" in moved["text"]
    assert await tenant.core.bookings.for_day(TUE) == []
    [now] = await tenant.core.bookings.for_day(WED)
    assert now.booking.starts_at.hour == 13  # 16:00 Moscow


async def test_the_same_in_russian(start_bot, tenant) -> None:
    await tenant.core.catalogue.set_date_exception(THU)
    bot = await start_bot()
    owner = bot.owner
    await say(owner, "/language")
    await tap(owner, "🇷🇺 Русский")
    await say(owner, "/admin")
    await tap(owner, "👥 Мастера и часы")
    await tap(owner, "Ivan")
    await tap(owner, "🕘 Рабочие часы")
    await tap(owner, "Пн: 10:00-18:00")
    refused = await say(owner, "18-9")
    assert refused["text"].startswith("В «18-9» конец не позже начала")
    assert "Отправьте их так: 9:00-18:00, 9-18" in refused["text"]
    saved = await say(owner, "9:00–18:00")
    assert "Сохранено — Пн: 09:00-18:00" in saved["text"]
    copied = await tap(owner, "📋 Пн–Пт")
    assert "скопированы: Вт, Ср, Чт, Пт" in copied["text"]

    anna = await bot.customer("Анна", language_code="ru")
    await say(anna, "/book")
    calendar = await tap(anna, "Haircut · 1 ч · 1\u202f500 ₽")
    assert "✕ — не работаем" in calendar["text"]
    answer = await anna.callback_answer(await anna.click("✕"))
    assert answer["text"] == "Чт 10 янв мы не работаем. Выберите другой день."
