"""Calendar files: a confirmed booking's .ics for the customer, the owner's schedule as .ics.

Every file is read back from the emulator and parsed with a real iCalendar parser (``icalendar``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from tenant_bot.booking import Actor
from tenant_bot.calendar_files import CalendarEvent, calendar, fold, transitions
from tests.support.chat_helpers import book_first_slot, say, tap, wait_for_text

MOSCOW = ZoneInfo("Europe/Moscow")


async def documents(user: Any, suffix: str = ".ics") -> list[dict[str, Any]]:
    return [
        m
        for m in await user.messages()
        if m["document"] and m["document"]["file_name"].endswith(suffix)
    ]


async def events_of(user: Any, message: dict[str, Any]) -> list[icalendar.Event]:
    parsed = icalendar.Calendar.from_ical(await user.download(message))
    return list(parsed.walk("VEVENT"))


def utc(value: Any) -> datetime:
    moment = value.dt
    assert moment.tzinfo is not None, "times carry their time zone"
    return moment.astimezone(UTC)


async def test_confirmed_booking_comes_with_a_calendar_file_moved_keeps_its_uid(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(bot.owner, "/start")
    await book_first_slot(anna, time="10:00")
    await wait_for_text(anna, "Add it to your calendar")
    [first] = await documents(anna)
    assert first["document"]["file_name"] == "Haircut.ics"
    raw = (await anna.download(first)).decode()
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Moscow" in raw
    [event] = await events_of(anna, first)
    [booking] = await tenant.core.bookings.for_day(date(2030, 1, 8))
    assert utc(event["DTSTART"]) == booking.booking.starts_at
    assert utc(event["DTEND"]) == booking.booking.ends_at
    assert event["DTSTART"].params["TZID"] == "Europe/Moscow"
    assert event["DTSTART"].dt.astimezone(MOSCOW).hour == 10  # the business's clock time
    assert str(event["LOCATION"]) == "Tverskaya 1"
    assert str(event["SUMMARY"]) == "Haircut — Barber <Ivan>"  # plain text, not HTML
    assert int(event["SEQUENCE"]) == 0
    uid = str(event["UID"])
    assert str(booking.booking.id) in uid

    # moved: a new file of the same event
    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    await tap(anna, "🔁 Reschedule")
    await tap(anna, "9")
    await tap(anna, "15:00")
    await tap(anna, "✅ Yes, move it")
    await wait_for_text(bot.owner, "Booking moved")
    for _ in range(50):
        files = await documents(anna)
        if len(files) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(files) == 2
    [moved] = await events_of(anna, files[1])
    assert str(moved["UID"]) == uid  # calendar apps update the event, not add a second one
    assert int(moved["SEQUENCE"]) == 1
    assert moved["DTSTART"].dt.astimezone(MOSCOW) == datetime(2030, 1, 9, 15, 0, tzinfo=MOSCOW)


async def test_a_booking_awaiting_confirmation_gets_its_file_once_confirmed(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/admin")
    await tap(bot.owner, "⚙️ Settings")
    await tap(bot.owner, "▫️ Owner confirms bookings")
    anna = await bot.customer("Anna")
    final = await book_first_slot(anna)
    assert "awaiting" in final["text"]
    assert await documents(anna) == []  # not yet: the time is not certain
    await wait_for_text(bot.owner, "New booking (awaiting confirmation)")
    await tap(bot.owner, "✅ Confirm booking")
    await wait_for_text(anna, "Add it to your calendar")
    [file] = await documents(anna)
    [event] = await events_of(anna, file)
    assert str(event["STATUS"]) == "CONFIRMED"


async def test_owner_downloads_the_week_as_a_calendar_file(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    boris = await bot.customer("Boris")
    await book_first_slot(anna, time="10:00")
    await book_first_slot(boris, name="Boris", phone="+79161234568", time="12:00")
    bookings = await tenant.core.bookings.for_day(date(2030, 1, 8))
    cancelled = next(b for b in bookings if b.customer_name == "Boris")
    await tenant.core.bookings.cancel(cancelled.booking.id, actor=Actor.owner())

    await say(bot.owner, "/admin")
    await tap(bot.owner, "📅 Calendar file")
    await tap(bot.owner, "This week")
    message = await wait_for_text(bot.owner, "1 booking.")
    assert message["document"]["file_name"] == "schedule-2030-01-07-2030-01-13.ics"
    events = await events_of(bot.owner, message)
    assert [str(e["SUMMARY"]) for e in events] == ["Haircut — Anna"]  # the cancelled one left out
    assert "+79161234567" in str(events[0]["DESCRIPTION"])
    anna_booking = next(b for b in bookings if b.customer_name == "Anna")
    assert utc(events[0]["DTSTART"]) == anna_booking.booking.starts_at

    await say(bot.owner, "/admin")
    await tap(bot.owner, "📅 Calendar file")
    await tap(bot.owner, "Today")
    empty = await wait_for_text(bot.owner, "0 bookings.")
    assert await events_of(bot.owner, empty) == []


def test_time_zone_with_summer_time_parses_to_the_same_instants() -> None:
    """A zone with summer time: the VTIMEZONE carries both offsets and the parser agrees with
    the tz database on either side of the change."""
    berlin = ZoneInfo("Europe/Berlin")
    winter = datetime(2030, 3, 30, 10, 0, tzinfo=berlin)  # the day before the change
    summer = datetime(2030, 3, 31, 10, 0, tzinfo=berlin)
    events = [
        CalendarEvent(
            uid=f"b{i}@test",
            sequence=0,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            summary="Haircut, beard; colour\\wash",
            location="Straße 1\nHof",
            description="x" * 200 + "é" * 100,
        )
        for i, start in enumerate((winter, summer))
    ]
    body = calendar(events, zone=berlin, name="Salon", now=datetime(2030, 1, 1, tzinfo=UTC))
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))
    parsed = icalendar.Calendar.from_ical(body)
    [zone] = parsed.walk("VTIMEZONE")
    offsets = {c["TZOFFSETTO"].td for c in zone.subcomponents}
    assert {timedelta(hours=1), timedelta(hours=2)} <= offsets
    tz = zone.to_tz()
    for event, start in zip(parsed.walk("VEVENT"), (winter, summer), strict=True):
        naive = event["DTSTART"].dt.replace(tzinfo=None)
        assert naive.replace(tzinfo=tz).astimezone(UTC) == start.astimezone(UTC)
        assert utc(event["DTSTART"]) == start.astimezone(UTC)
        assert str(event["SUMMARY"]) == "Haircut, beard; colour\\wash"
        assert str(event["LOCATION"]) == "Straße 1\nHof"
        assert str(event["DESCRIPTION"]) == "x" * 200 + "é" * 100


def test_transitions_and_folding() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    found = transitions(
        berlin, datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 12, 31, tzinfo=UTC)
    )
    assert found == [
        datetime(2030, 3, 31, 1, 0, tzinfo=UTC),
        datetime(2030, 10, 27, 1, 0, tzinfo=UTC),
    ]
    assert (
        transitions(MOSCOW, datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
        == []
    )
    line = "DESCRIPTION:" + "ж" * 100
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
