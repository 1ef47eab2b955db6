"""Calendar files (RFC 5545 ``.ics``): a customer's booking, and the owner's schedule of some days.

Written by hand (a few lines of text; an iCalendar library would cost every tenant bot memory for
what is a handful of ``KEY:value`` lines). Times are local times with a ``TZID`` naming the tenant's
IANA time zone, and the file carries that zone's ``VTIMEZONE`` (its UTC offsets and the transitions
around the events, read from the same tz database the bot books with), so a calendar app shows the
booking at the business's clock time wherever the phone is.

Every booking is one ``VEVENT`` whose ``UID`` is the booking's own (the tenant and the booking id):
importing a newer file of the same booking updates the event instead of adding a second one, and
``SEQUENCE`` is the number of times the booking was moved, so the newer file wins.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram.types import BufferedInputFile

from tenant_bot.booking import BookingCore
from tenant_bot.booking.models import BookingDetails, BookingStatus, BusinessSettings
from tenant_bot.delivery import Delivery, Outcome
from tenant_bot.notifications import Notifier
from tenant_bot.texts import BotTexts

log = logging.getLogger(__name__)

PRODID = "-//botfleet//tenant bot//EN"
CALENDAR_FILE = "calendar_file"


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One booking as a calendar event (texts already in the reader's language)."""

    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str
    description: str
    cancelled: bool = False


def plain(text: str) -> str:
    """A rendered text (HTML-escaped for Telegram) as plain text for a calendar file."""
    return html.unescape(text)


def escape(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newlines escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Lines longer than 75 octets are folded (CRLF + a space), never inside a UTF-8 character."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # continuation lines start with a space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta()).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def transitions(zone: ZoneInfo, first: datetime, last: datetime) -> list[datetime]:
    """The UTC instants in [first, last] where ``zone``'s offset changes (to the minute): found by
    stepping a day at a time and narrowing each change down."""
    found: list[datetime] = []
    step = timedelta(days=1)
    at = first.astimezone(UTC)
    end = last.astimezone(UTC)
    offset = at.astimezone(zone).utcoffset()
    while at < end:
        nxt = min(at + step, end)
        if nxt.astimezone(zone).utcoffset() != offset:
            low, high = at, nxt
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zone).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            found.append(high.replace(second=0, microsecond=0))
            offset = nxt.astimezone(zone).utcoffset()
        at = nxt
    return found


def vtimezone(zone: ZoneInfo, first: datetime, last: datetime) -> list[str]:
    """A ``VTIMEZONE`` for ``zone`` valid from a year before ``first`` to a year after ``last``:
    the offset in force at the start, then each transition in that span."""
    start = first.astimezone(UTC) - timedelta(days=366)
    end = last.astimezone(UTC) + timedelta(days=366)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone.key}"]

    def observance(at: datetime, before: timedelta | None) -> None:
        local = at.astimezone(zone)
        after = local.utcoffset()
        kind = "DAYLIGHT" if local.dst() else "STANDARD"
        wall = (at + (before if before is not None else after or timedelta())).replace(tzinfo=None)
        lines.extend(
            [
                f"BEGIN:{kind}",
                f"DTSTART:{_local(wall)}",
                f"TZOFFSETFROM:{_offset(before if before is not None else after)}",
                f"TZOFFSETTO:{_offset(after)}",
            ]
        )
        if local.tzname():
            lines.append(f"TZNAME:{escape(local.tzname() or '')}")
        lines.append(f"END:{kind}")

    observance(start.replace(second=0, microsecond=0), None)
    for change in transitions(zone, start, end):
        observance(change, (change - timedelta(minutes=1)).astimezone(zone).utcoffset())
    lines.append("END:VTIMEZONE")
    return lines


def calendar(events: Sequence[CalendarEvent], *, zone: ZoneInfo, name: str, now: datetime) -> bytes:
    """A whole ``.ics`` file: the zone's ``VTIMEZONE`` and one ``VEVENT`` per event."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(plain(name))}",
        f"X-WR-TIMEZONE:{zone.key}",
    ]
    if events:
        lines.extend(
            vtimezone(zone, min(e.starts_at for e in events), max(e.ends_at for e in events))
        )
    for event in events:
        lines.extend(
            [
                "BEGIN:VEVENT",
                f"UID:{event.uid}",
                f"SEQUENCE:{event.sequence}",
                f"DTSTAMP:{_utc(now)}",
                f"DTSTART;TZID={zone.key}:{_local(event.starts_at.astimezone(zone))}",
                f"DTEND;TZID={zone.key}:{_local(event.ends_at.astimezone(zone))}",
                f"SUMMARY:{escape(event.summary)}",
            ]
        )
        if event.location:
            lines.append(f"LOCATION:{escape(event.location)}")
        if event.description:
            lines.append(f"DESCRIPTION:{escape(event.description)}")
        lines.append(f"STATUS:{'CANCELLED' if event.cancelled else 'CONFIRMED'}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode("utf-8")


def booking_uid(prefix: str, booking_id: int) -> str:
    """The booking's ``UID``: the same in every file of it, different for every tenant."""
    tenant = "-".join(part for part in prefix.split(":") if part) or "tenant"
    return f"booking-{booking_id}.{tenant}@botfleet"


def filename(text: str) -> str:
    """A file name safe on every phone: letters, digits and dashes."""
    cleaned = "".join(c if c.isalnum() else "-" for c in text).strip("-")
    return "-".join(part for part in cleaned.split("-") if part)[:60] or "booking"


async def send_booking_file(
    notifier: Notifier, core: BookingCore, details: BookingDetails, settings: BusinessSettings
) -> Delivery | None:
    """Send the customer the ``.ics`` of their confirmed booking (once per booking and time; a
    pending or ended booking gets none). A failure is counted and logged, never raised: the
    booking stands whether or not the file arrives."""
    booking = details.booking
    chat_id = details.customer_telegram_id
    if booking.status is not BookingStatus.CONFIRMED or chat_id is None:
        return None  # not yet certain, or a customer the owner booked who has no Telegram chat
    sequence = (await core.calendar.times_moved([booking.id]))[booking.id]
    if not await notifier.once(f"ics:{booking.id}:{sequence}"):
        return None
    texts = notifier.texts
    locale = (
        details.customer_locale
        if details.customer_locale in texts.locales
        else texts.default_locale
    )
    name = settings.business_name or plain(texts(locale, "ics_business"))
    event = CalendarEvent(
        uid=booking_uid(notifier.prefix, booking.id),
        sequence=sequence,
        starts_at=booking.starts_at,
        ends_at=booking.ends_at,
        summary=plain(texts(locale, "ics_summary", service=details.service_name, business=name)),
        location=settings.address,
        description=plain(
            texts(
                locale,
                "ics_description",
                staff=details.staff_name,
                phone=settings.phone,
                map_url=settings.map_url,
            )
        ),
    )
    try:
        body = calendar([event], zone=settings.zone, name=name, now=notifier.clock())
        await notifier.courier.bot.send_document(
            chat_id,
            BufferedInputFile(body, filename=f"{filename(details.service_name)}.ics"),
            caption=texts(locale, "ics_caption"),
        )
    except Exception as exc:
        result = Delivery.of(exc)
        if result.outcome is Outcome.RETRY:
            notifier.tally.deferred(CALENDAR_FILE, booking.id, result.error)
        else:
            notifier.tally.set_aside(CALENDAR_FILE, booking.id, result.error)
        return result
    return Delivery.sent()


def schedule_file(
    bookings: Sequence[BookingDetails],
    moved: dict[int, int],
    *,
    texts: BotTexts,
    locale: str,
    prefix: str,
    settings: BusinessSettings,
    title: str,
    now: datetime,
) -> bytes:
    """The owner's schedule: every booking that counts (cancelled ones left out), named by
    service and customer, with the staff member, the customer's phone and the status."""
    events = [
        CalendarEvent(
            uid=booking_uid(prefix, d.booking.id),
            sequence=moved.get(d.booking.id, 0),
            starts_at=d.booking.starts_at,
            ends_at=d.booking.ends_at,
            summary=plain(
                texts(locale, "ics_owner_summary", service=d.service_name, customer=d.customer_name)
            ),
            location=settings.address,
            description=plain(
                texts(
                    locale,
                    "ics_owner_description",
                    staff=d.staff_name,
                    phone=d.customer_phone or "",
                    status=texts(locale, f"status_{d.booking.status.value}"),
                )
            ),
        )
        for d in bookings
        if d.booking.status is not BookingStatus.CANCELLED
    ]
    return calendar(events, zone=settings.zone, name=title, now=now)
