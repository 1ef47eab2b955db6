"""The owner menu: block a day, confirmation mode, cancel with a reason, exports."""

from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import load_workbook

from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text


async def test_owner_blocks_a_day_and_no_slots_are_offered(start_bot, tenant) -> None:
    bot = await start_bot()
    await say(bot.owner, "/admin")
    await tap(bot.owner, "⛔ Blocked time")
    await tap(bot.owner, "⛔ Block a whole day")
    await tap(bot.owner, "8")
    assert "Tue 8 Jan (whole day)" in (await bot.owner.last_message())["text"]
    assert await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 8)) == []

    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    labels = await buttons(anna)
    # a blocked day is closed, not fully booked (no waitlist to offer there)
    assert "8" not in labels and "·8·" not in labels and "✕" in labels and "9" in labels

    await tap(bot.owner, "🗑 Unblock Tue 8 Jan (whole day)")
    assert await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 8))


async def test_confirmation_mode_and_cancel_with_reason(start_bot, tenant) -> None:
    bot = await start_bot()
    await say(bot.owner, "/admin")
    await tap(bot.owner, "⚙️ Settings")
    await tap(bot.owner, "▫️ Owner confirms bookings")
    assert "Owner confirms: yes" in (await bot.owner.last_message())["text"]

    anna = await bot.customer("Anna")
    final = await book_first_slot(anna)
    assert "awaiting" in final["text"]
    await wait_for_text(bot.owner, "New booking (awaiting confirmation)")
    await tap(bot.owner, "✅ Confirm booking")
    assert "confirmed" in (await wait_for_text(anna, "Your booking is confirmed"))["text"]

    await tap(bot.owner, "✖ Cancel booking")
    await say(bot.owner, "Master is ill <sorry>")
    told = await wait_for_text(anna, "cancelled by the business")
    assert "Master is ill <sorry>" in told["text"]
    owner_texts = [m["text"] or "" for m in await bot.owner.messages()]
    assert not any("Booking cancelled:" in t for t in owner_texts)  # not told of their own action


async def test_exports_open_as_csv_and_xlsx(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(bot.owner, "/start")  # the owner's chat, for the new-booking notice
    await book_first_slot(anna, name="=1+1 Анна")
    await wait_for_text(bot.owner, "New booking", timeout=30)  # sent by the background loop
    await say(bot.owner, "/admin")
    await tap(bot.owner, "📤 Export")
    await tap(bot.owner, "Other dates…")
    await say(bot.owner, "01.01.2030 31.01.2030")
    docs = [m for m in await bot.owner.messages() if m["document"]]
    assert len(docs) == 2
    by_name = {m["document"]["file_name"]: m for m in docs}
    csv_bytes = await bot.owner.download(by_name["bookings_20300101_20300131.csv"])
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))
    assert len(rows) == 2 and "'=1+1 Анна" in rows[1]  # no formula injection
    xlsx = await bot.owner.download(by_name["bookings_20300101_20300131.xlsx"])
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet.max_row == 2


async def test_owner_manages_services_staff_hours_settings_profile(start_bot, tenant) -> None:
    bot = await start_bot()
    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "💈 Services")
    await tap(owner, "➕ Add a service")
    bad = await say(owner, "Beard trim; two; 700")
    assert "could not read" in bad["text"]
    await say(owner, "Beard trim; 30; 700")
    assert "Beard trim" in (await owner.last_message())["text"]

    await say(owner, "/admin")
    await tap(owner, "👥 Staff & hours")
    await tap(owner, "➕ Add a staff member")
    await say(owner, "Olga")
    await tap(owner, "🕘 Working hours")
    await tap(owner, "Mon: day off")
    bad = await say(owner, "25:00-26:00")
    assert "does not exist" in bad["text"] and "9:00-18:00" in bad["text"]
    await say(owner, "09:00-13:00, 14:00-18:00")
    assert "Mon: 09:00-13:00, 14:00-18:00" in (await owner.last_message())["text"]

    await say(owner, "/admin")
    await tap(owner, "⚙️ Settings")
    await tap(owner, "Minimum notice")
    await say(owner, "30")
    await tap(owner, "⏰ Reminders")
    await say(owner, "24h, 3h")
    settings = await tenant.core.catalogue.get_settings()
    assert settings.min_notice_minutes == 30 and settings.reminder_offsets_minutes == (1440, 180)

    await say(owner, "/admin")
    await tap(owner, "🏷 Business profile")
    await tap(owner, "Address")
    await say(owner, "Arbat 5")
    await tap(owner, "Map link")
    assert "http" in (await say(owner, "not a link"))["text"]
    await say(owner, "https://maps.example/arbat")
    anna = await bot.customer("Anna")
    welcome = await say(anna, "/start")
    start_text = (await anna.messages())[-2]["text"]
    assert "Arbat 5" in start_text and welcome


async def test_schedule_move_no_show_and_typed_block(start_bot, tenant, clock) -> None:
    from datetime import timedelta

    from tenant_bot.booking import BookingStatus

    bot = await start_bot()
    owner = bot.owner
    anna = await bot.customer("Anna")
    await say(owner, "/start")  # the owner's chat, for the new-booking notice
    await book_first_slot(anna, time="10:00")  # Tue 8 Jan
    await wait_for_text(owner, "New booking", timeout=30)  # the notice, sent by the background loop

    await say(owner, "/admin")
    tomorrow = await tap(owner, "📋 Tomorrow")
    assert "Tue 8 Jan" in tomorrow["text"] and "10:00 · Haircut · Ivan · Anna" in tomorrow["text"]
    await tap(owner, "Tue 8 Jan 10:00 · Anna")
    await tap(owner, "🔁 Move to another time")
    await tap(owner, "9")
    card = await tap(owner, "12:00")
    assert "Wed 9 Jan, 12:00" in card["text"]
    moved = await wait_for_text(anna, "Your booking was moved")
    assert "Tue 8 Jan, 10:00" in moved["text"] and "Wed 9 Jan, 12:00" in moved["text"]
    assert not any("Booking moved" in (m["text"] or "") for m in await owner.messages())

    clock.advance(timedelta(days=2, hours=4))  # Wed 9 Jan 13:00 Moscow: it has started
    await say(owner, "/admin")
    await tap(owner, "📋 Today")
    await tap(owner, "Wed 9 Jan 12:00 · Anna")
    await tap(owner, "🚫 Did not come")
    [details] = await tenant.core.bookings.for_day(date(2030, 1, 9))
    assert details.booking.status is BookingStatus.NO_SHOW

    await say(owner, "/admin")
    await tap(owner, "⛔ Blocked time")
    await tap(owner, "⛔ Block a period")
    assert "could not read" in (await say(owner, "tomorrow afternoon"))["text"]
    await say(owner, "10.01 14:00-16:00 dentist")
    assert "dentist" in (await owner.last_message())["text"]
    free = await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 10))
    local_hours = {(s.start.hour + 3) % 24 for s in free}
    assert 14 not in local_hours and 15 not in local_hours and 16 in local_hours
