"""What the owner screens share: the owner menu keyboard, the ask-type-save steps of typed input,
and parsing of typed dates and times."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tenant_bot.booking.errors import BookingError
from tenant_bot.callbacks import Admin, Menu
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.texts import BotTexts

T = TypeVar("T")

_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$|^(\d{1,2})\.(\d{1,2})(?:\.(\d{2,4}))?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def owner_menu(texts: BotTexts, locale: str) -> InlineKeyboardMarkup:
    def item(key: str, section: str) -> InlineKeyboardButton:
        return button(texts(locale, key), Admin(section=section).pack())

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [item("adm_btn_today", "today"), item("adm_btn_tomorrow", "tomorrow")],
            [item("adm_btn_new_booking", "nb"), item("adm_btn_walk_in", "wi")],
            [item("adm_btn_clients", "cb")],
            [item("adm_btn_pick", "pick"), item("adm_btn_awaiting", "awaiting")],
            [item("adm_btn_blocks", "blocks"), item("adm_btn_services", "services")],
            [item("adm_btn_staff", "staff"), item("adm_btn_settings", "settings")],
            [item("adm_btn_profile", "profile"), item("adm_btn_export", "export")],
            [item("adm_btn_reviews", "reviews"), item("adm_btn_mailings", "mailings")],
            [item("adm_btn_ics", "ics"), item("adm_btn_link", "link")],  # issue 20
            [item("adm_btn_stats", "stats")],  # issue 20
            [button(texts(locale, "btn_home"), Menu(action="home").pack())],
        ]
    )


def back_to_menu(texts: BotTexts, locale: str, section: str = "menu") -> list[InlineKeyboardButton]:
    return [button(texts(locale, "btn_back"), Admin(section=section).pack())]


def paused_mark(active: bool) -> str:
    """The prefix that marks a switched-off service or staff member in a list."""
    return "" if active else "⏸ "


def on_off_row(
    texts: BotTexts, locale: str, *, active: bool, callback_data: str
) -> list[InlineKeyboardButton]:
    """The card button that switches a service or staff member off (or back on)."""
    return [button(texts(locale, "adm_turn_off" if active else "adm_turn_on"), callback_data)]


async def show_catalogue_list(
    event: CallbackQuery | Message,
    *,
    title: str,
    entries: list[tuple[str, str]],
    add: InlineKeyboardButton,
    texts: BotTexts,
    locale: str,
) -> None:
    """A list of services or staff: a button per ``(label, callback data)`` entry, then "add"
    and the way back to the owner menu."""
    rows = [[button(label, callback_data)] for label, callback_data in entries]
    rows.append([add])
    rows.append(back_to_menu(texts, locale))
    await show(event, title, InlineKeyboardMarkup(inline_keyboard=rows))


async def ask_for_input(
    callback: CallbackQuery,
    state: FSMContext,
    *,
    input_state: State,
    prompt: str,
    back: list[InlineKeyboardButton],
    data: dict[str, Any] | None = None,
) -> None:
    """Answer the tap, wait for a typed reply in ``input_state`` (remembering ``data`` for the
    save step) and show ``prompt`` with the ``back`` row."""
    await callback.answer()
    await state.set_state(input_state)
    if data is not None:
        await state.set_data(data)
    await show(callback, prompt, InlineKeyboardMarkup(inline_keyboard=[back]))


async def change_or_explain(
    message: Message, texts: BotTexts, locale: str, change: Awaitable[T]
) -> T | None:
    """The result of ``change``, or None after telling the owner why the core refused it (the
    input state stays, so the owner can type again)."""
    try:
        return await change
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return None


async def input_saved(message: Message, state: FSMContext, texts: BotTexts, locale: str) -> None:
    """The typed value is stored: leave the input state, say so."""
    await state.clear()
    await message.answer(texts(locale, "adm_saved"))


def parse_day(text: str, *, today: date, future: bool = True) -> date:
    """``2025-03-07``, ``07.03.2025`` or ``07.03`` (the nearest such day ahead, or with
    ``future=False`` the nearest one not ahead of ``today``)."""
    match = _DATE.match(text.strip())
    if not match:
        raise ValueError(text)
    if match.group(1):
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    year_text = match.group(6)
    day, month = int(match.group(4)), int(match.group(5))
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        return date(year, month, day)
    guess = date(today.year, month, day)
    if future:
        return guess if guess >= today else date(today.year + 1, month, day)
    return guess if guess <= today else date(today.year - 1, month, day)


def parse_time(text: str) -> time:
    match = _TIME.match(text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(text)
    return time(int(match.group(1)), int(match.group(2)))


def parse_period(text: str, *, today: date, zone: ZoneInfo) -> tuple[datetime, datetime, str]:
    """``07.03 14:00-16:00 dentist`` -> (start, end, reason) in ``zone``; raises ``ValueError``."""
    parts = text.strip().split(maxsplit=2)
    if len(parts) < 2 or "-" not in parts[1]:
        raise ValueError(text)
    day = parse_day(parts[0], today=today)
    start_text, end_text = parts[1].split("-", 1)
    start = datetime.combine(day, parse_time(start_text), zone)
    end = (
        datetime.combine(day + timedelta(days=1), time(0), zone)
        if end_text.strip() == "24:00"
        else datetime.combine(day, parse_time(end_text), zone)
    )
    if end <= start:
        raise ValueError(text)
    return start, end, parts[2] if len(parts) > 2 else ""


def parse_day_range(text: str, *, today: date, max_days: int) -> tuple[date, date]:
    """``01.03 31.03`` -> (first, last day), both not ahead of ``today`` unless a year is typed,
    in order and spanning fewer than ``max_days`` days; raises ``ValueError``."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(text)
    day_from = parse_day(parts[0], today=today, future=False)
    day_to = parse_day(parts[1], today=today, future=False)
    if day_to < day_from or (day_to - day_from).days >= max_days:
        raise ValueError(text)
    return day_from, day_to


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as an aware [start, end) pair (DST days are 23 or 25 hours long)."""
    return (
        datetime.combine(day, time(0), zone),
        datetime.combine(day + timedelta(days=1), time(0), zone),
    )
