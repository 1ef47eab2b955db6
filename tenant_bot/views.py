"""Screens shared by several routers: the booking calendar, the free times of a day, booking cards.

Each function returns ``(text, keyboard)``; routers decide whether to edit a message or send one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from schemas.notices import BookingFacts
from tenant_bot import keyboards
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import BookingDetails, BusinessSettings, Clock, DaySchedule, Slot
from tenant_bot.keyboards import button
from tenant_bot.texts import BotTexts

Screen = tuple[str, InlineKeyboardMarkup]


def local_today(settings: BusinessSettings, clock: Clock) -> date:
    return clock().astimezone(settings.zone).date()


def last_bookable_day(settings: BusinessSettings, clock: Clock) -> date:
    """The last local day inside the booking horizon."""
    return local_today(settings, clock) + timedelta(days=settings.horizon_days - 1)


def month_of(today: date, offset: int) -> tuple[int, int]:
    index = today.year * 12 + today.month - 1 + offset
    return index // 12, index % 12 + 1


def months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


class MonthPage(NamedTuple):
    """The month a calendar shows, ``offset`` months after today's (0..``max_offset``)."""

    year: int
    month: int
    offset: int
    max_offset: int


def month_page(today: date, last: date, offset: int) -> MonthPage:
    """The month ``offset`` months ahead, the offset clamped to the months from today to ``last``
    (an old button may ask for a month no longer in range)."""
    max_offset = months_between(today, last)
    offset = max(0, min(offset, max_offset))
    year, month = month_of(today, offset)
    return MonthPage(year, month, offset, max_offset)


async def calendar_screen(
    *,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    clock: Clock,
    service_id: int,
    staff_id: int | None,
    offset: int,
    purpose: str,
    back: InlineKeyboardButton | None,
    title_key: str = "pick_day",
    notice: bool = True,
) -> Screen:
    """A month of the booking horizon: the days that have free time for the service, the fully
    booked ones, and the closed ones (not offered, not "fully booked"); ``notice=False`` for the
    owner's and staff's picker (no minimum notice)."""
    settings = await cache.settings()
    today = local_today(settings, clock)
    last = last_bookable_day(settings, clock)
    year, month, offset, max_offset = month_page(today, last, offset)
    first = max(today, date(year, month, 1))
    month_end = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    end = min(month_end, last)
    days = await core.slots.calendar_days(
        service_id, day_from=first, days=(end - first).days + 1, staff_id=staff_id, notice=notice
    )
    markup = keyboards.month_calendar(
        texts,
        locale,
        year=year,
        month=month,
        offset=offset,
        max_offset=max_offset,
        today=today,
        last_day=last,
        free_days=days.free,
        full_days=days.full,
        purpose=purpose,
        back=back,
    )
    service = await cache.service(service_id)
    return texts(locale, title_key, service=service.name), markup


def time_labels(slots: list[Slot], zone: ZoneInfo) -> dict[int, str]:
    return {int(s.start.timestamp()): f"{s.start.astimezone(zone):%H:%M}" for s in slots}


async def times_screen(
    *,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    service_id: int,
    staff_id: int | None,
    day: date,
    note_key: str | None = None,
    notice: bool = True,
) -> tuple[Screen, bool]:
    """Free starts of ``day``; the flag is False when the day has none (the caller offers the
    waitlist). ``notice`` as in :func:`calendar_screen`."""
    settings = await cache.settings()
    slots = await core.slots.free_slots(service_id, day_from=day, staff_id=staff_id, notice=notice)
    day_text = texts.day(locale, day)
    if not slots:
        return (
            texts(locale, "day_full", day=day_text),
            keyboards.day_full(texts, locale, day),
        ), False
    note = texts(locale, note_key) + "\n\n" if note_key else ""
    markup = keyboards.times(texts, locale, slots, zone_format=time_labels(slots, settings.zone))
    return (note + texts(locale, "pick_time", day=day_text), markup), True


def facts(
    texts: BotTexts, locale: str, details: BookingDetails, settings: BusinessSettings
) -> BookingFacts:
    """The values every booking text shows, formatted for ``locale`` (notices build on them)."""
    booking = details.booking
    return BookingFacts(
        service=details.service_name,
        staff=details.staff_name,
        when=texts.when(locale, booking.starts_at, settings.zone),
        price=texts.money(booking.price, booking.currency),
        customer=details.customer_name,
        phone=details.customer_phone or "",
        status=texts(locale, f"status_{booking.status.value}"),
        business=settings.business_name,
        address=settings.address,
        map_url=settings.map_url,
        business_phone=settings.phone,
    )


def booking_facts(
    texts: BotTexts, locale: str, details: BookingDetails, settings: BusinessSettings
) -> dict[str, str]:
    """:func:`facts` as template keyword arguments, for the screens that show a booking."""
    return facts(texts, locale, details, settings).model_dump()


def booking_label(
    texts: BotTexts, locale: str, details: BookingDetails, settings: BusinessSettings
) -> str:
    """A one-line button label: ``Fri 7 Mar, 14:30 · Haircut``."""
    when = texts.when(locale, details.booking.starts_at, settings.zone)
    return f"{when} · {details.service_name}"[:60]


def schedule_line(
    texts: BotTexts, locale: str, details: BookingDetails, settings: BusinessSettings, *, key: str
) -> str:
    """One booking of a day's list (``key``: the owner's line, or a staff member's without the
    staff name), marked when the customer answered a reminder "I'll come"."""
    local = details.booking.starts_at.astimezone(settings.zone)
    return texts(
        locale,
        key,
        time=f"{local:%H:%M}",
        service=details.service_name,
        staff=details.staff_name,
        customer=details.customer_name,
        status=texts(locale, f"status_{details.booking.status.value}"),
    ) + (
        " " + texts(locale, "adm_will_come_mark")
        if details.booking.customer_confirmed_at and details.booking.status.active
        else ""
    )


BookingData = Callable[[int], str]
"""The callback data of a booking's button in a list, from its id (the owner's or a staff card)."""


def booking_rows(
    texts: BotTexts,
    locale: str,
    items: Sequence[BookingDetails],
    settings: BusinessSettings,
    open_card: BookingData,
) -> list[list[InlineKeyboardButton]]:
    """A button per booking (at most 40): ``Tue 8 Jan 12:00 · Vera``."""
    rows = []
    for details in items[:40]:
        local = details.booking.starts_at.astimezone(settings.zone)
        label = f"{texts.day(locale, local.date())} {local:%H:%M} · {details.customer_name}"[:60]
        rows.append([button(label, open_card(details.booking.id))])
    return rows


def schedule_screen(
    texts: BotTexts,
    locale: str,
    schedule: DaySchedule,
    settings: BusinessSettings,
    *,
    open_card: BookingData,
    line_key: str,
    bottom: Sequence[list[InlineKeyboardButton]],
) -> Screen:
    """A day's bookings, each a button to its card (``open_card``), then the ``bottom`` rows; the
    count leaves out the cancelled ones, listed apart below. The owner's day and a staff member's
    own day (:mod:`tenant_bot.handlers.staff_desk`) are this one screen."""
    text = texts(
        locale, "adm_schedule", day=texts.day(locale, schedule.day), count=len(schedule.booked)
    )
    line = functools.partial(schedule_line, texts, locale, settings=settings, key=line_key)
    if schedule.booked:
        text += "\n\n" + "\n".join(line(d) for d in schedule.booked)
    if schedule.cancelled:
        text += "\n\n" + texts(locale, "adm_schedule_cancelled", count=len(schedule.cancelled))
        text += "\n" + "\n".join(line(d) for d in schedule.cancelled)
    items = [*schedule.booked, *schedule.cancelled]
    rows = booking_rows(texts, locale, items, settings, open_card)
    return text[:4000], InlineKeyboardMarkup(inline_keyboard=[*rows, *bottom])


def phone_ending(phone: str) -> str:
    """The last four digits of a phone (``…1234``; "" for none): what a staff member's card
    shows, enough to tell callers apart without copying the owner's client book."""
    digits = [ch for ch in phone if ch.isdigit()]
    return "…" + "".join(digits[-4:]) if digits else ""
