"""Inline and reply keyboards of the customer side, and the calendar shared with the owner menu."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from tenant_bot.booking.models import BookingDetails, Service, Slot, Staff
from tenant_bot.callbacks import (
    Back,
    ClosedDay,
    Draft,
    Language,
    Menu,
    Month,
    MyBooking,
    PickDay,
    PickService,
    PickStaff,
    PickTime,
    Waitlist,
    day_code,
)
from tenant_bot.texts import BotTexts

NOOP = Menu(action="noop").pack()
CLOSED_DAY = "✕"  # a closed day in a customer's calendar (the day picker's legend explains it)


def button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def main_menu(texts: BotTexts, locale: str, *, is_owner: bool) -> InlineKeyboardMarkup:
    """Book / My bookings / Language / Help (+ the owner menu for owners)."""
    rows = [
        [button(texts(locale, "btn_book"), Menu(action="book").pack())],
        [button(texts(locale, "btn_my"), Menu(action="my").pack())],
        [
            button(texts(locale, "btn_language"), Menu(action="lang").pack()),
            button(texts(locale, "btn_help"), Menu(action="help").pack()),
        ],
    ]
    if is_owner:
        rows.append([button(texts(locale, "btn_admin"), Menu(action="admin").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def home_row(texts: BotTexts, locale: str) -> list[InlineKeyboardButton]:
    return [button(texts(locale, "btn_home"), Menu(action="home").pack())]


def services(texts: BotTexts, locale: str, items: Iterable[Service]) -> InlineKeyboardMarkup:
    """One service per row with its duration and price."""
    rows = []
    for service in items:
        label = texts(
            locale,
            "service_button",
            name=service.name,
            duration=texts.duration(locale, service.duration_minutes),
            price=texts.money(service.price, service.currency),
        )
        rows.append([button(label, PickService(service_id=service.id).pack())])
    rows.append(home_row(texts, locale))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def staff(
    texts: BotTexts, locale: str, items: Iterable[Staff], labels: dict[int, str] | None = None
) -> InlineKeyboardMarkup:
    """ "Anyone" first, then each staff member (``labels``: a label instead of the name, e.g.
    with the rating)."""
    labels = labels or {}
    rows = [[button(texts(locale, "btn_anyone"), PickStaff(staff_id=0).pack())]]
    rows += [
        [button(labels.get(member.id, member.name), PickStaff(staff_id=member.id).pack())]
        for member in items
    ]
    rows.append([button(texts(locale, "btn_back"), Back(step="service").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def month_calendar(
    texts: BotTexts,
    locale: str,
    *,
    year: int,
    month: int,
    offset: int,
    max_offset: int,
    today: date,
    last_day: date,
    free_days: set[date] | frozenset[date],
    purpose: str,
    back: InlineKeyboardButton | None,
    full_days: set[date] | frozenset[date] | None = None,
) -> InlineKeyboardMarkup:
    """A month grid: free days are tappable. With ``full_days`` (a customer's calendar), fully
    booked days are marked ``·N·`` and tappable (to offer the waitlist) and the other days within
    the horizon are closed: ``✕``, which only says so when tapped. Days outside are blank."""
    rows: list[list[InlineKeyboardButton]] = [
        [button(f"{texts.month(locale, month)} {year}", NOOP)],
        [button(name, NOOP) for name in texts.weekday_names(locale)],
    ]
    for week in calendar.Calendar().monthdatescalendar(year, month):
        row = []
        for day in week:
            if day.month != month or day < today or day > last_day:
                row.append(button(" ", NOOP))
            elif day in free_days:
                row.append(button(str(day.day), PickDay(day=day_code(day), purpose=purpose).pack()))
            elif full_days is None:
                row.append(button(" ", NOOP))
            elif day in full_days:
                row.append(
                    button(f"·{day.day}·", PickDay(day=day_code(day), purpose=purpose).pack())
                )
            else:
                row.append(button(CLOSED_DAY, ClosedDay(day=day_code(day)).pack()))
        rows.append(row)
    nav = [
        button("◀", Month(offset=offset - 1, purpose=purpose).pack()) if offset > 0 else None,
        button("▶", Month(offset=offset + 1, purpose=purpose).pack())
        if offset < max_offset
        else None,
    ]
    rows.append([b for b in nav if b is not None] or [button(" ", NOOP)])
    if back is not None:
        rows.append([back])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def times(
    texts: BotTexts, locale: str, slots: Iterable[Slot], *, zone_format: dict[int, str]
) -> InlineKeyboardMarkup:
    """Free starts four per row (``zone_format`` maps epoch seconds to the local ``HH:MM``)."""
    # Plain lists on purpose: aiogram's InlineKeyboardBuilder deep-copies the whole keyboard on
    # every add, which costs milliseconds for a day of half-hour slots.
    flat = []
    for slot in slots:
        ts = int(slot.start.timestamp())
        flat.append(button(zone_format[ts], PickTime(ts=ts, staff_id=slot.staff_id).pack()))
    rows = [flat[i : i + 4] for i in range(0, len(flat), 4)]
    rows.append([button(texts(locale, "btn_back"), Back(step="day").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def day_full(texts: BotTexts, locale: str, day: date) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(texts(locale, "btn_waitlist"), Waitlist(day=day_code(day)).pack())],
            [button(texts(locale, "btn_other_day"), Back(step="day").pack())],
        ]
    )


def summary(texts: BotTexts, locale: str, draft: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(texts(locale, "btn_confirm"), Draft(action="ok", draft=draft).pack())],
            [button(texts(locale, "btn_change_time"), Back(step="time").pack())],
            [button(texts(locale, "btn_abandon"), Draft(action="x", draft=draft).pack())],
        ]
    )


def ask_name(texts: BotTexts, locale: str, suggestion: str | None) -> ReplyKeyboardMarkup | None:
    if not suggestion:
        return None
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=suggestion[:64])]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def ask_phone(texts: BotTexts, locale: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=texts(locale, "btn_share_phone"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
        input_field_placeholder="+7 900 000-00-00",
    )


def my_bookings(
    texts: BotTexts, locale: str, items: Iterable[tuple[BookingDetails, str]]
) -> InlineKeyboardMarkup:
    """One button per upcoming booking (label precomputed by the caller)."""
    rows = [
        [button(label, MyBooking(booking_id=details.booking.id).pack())] for details, label in items
    ]
    rows.append([button(texts(locale, "btn_book"), Menu(action="book").pack())])
    rows.append(home_row(texts, locale))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def my_booking(texts: BotTexts, locale: str, booking_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    texts(locale, "btn_reschedule"),
                    MyBooking(booking_id=booking_id, action="r").pack(),
                )
            ],
            [
                button(
                    texts(locale, "btn_cancel_booking"),
                    MyBooking(booking_id=booking_id, action="c").pack(),
                )
            ],
            [button(texts(locale, "btn_back"), Menu(action="my").pack())],
        ]
    )


def cancel_confirm(texts: BotTexts, locale: str, booking_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    texts(locale, "btn_yes_cancel"),
                    MyBooking(booking_id=booking_id, action="cy").pack(),
                )
            ],
            [button(texts(locale, "btn_keep"), MyBooking(booking_id=booking_id).pack())],
        ]
    )


def languages(texts: BotTexts, locale: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(texts(code, "language_name"), Language(code=code).pack())]
            for code in texts.locales
        ]
        + [home_row(texts, locale)]
    )
