"""Hours for one date, per staff member: longer, shorter or closed (a late Friday, a short
pre-holiday day), then back to the weekly hours with one tap. The core's date exceptions hold them;
the customers' calendars follow at once."""

from __future__ import annotations

from datetime import date

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader, parse_day_hours
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import Clock, WorkInterval
from tenant_bot.callbacks import DateHours, Month, PickDay, StaffEdit, day_code, day_of
from tenant_bot.handlers.admin.menu import admin_calendar
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_date_hours")

PURPOSE = "h"


def _hours_text(texts: BotTexts, locale: str, intervals: list[WorkInterval]) -> str:
    return ", ".join(str(i) for i in intervals) or texts(locale, "adm_day_off")


@routes.callback_query(StaffEdit.filter(F.action == "dh"))
async def open_calendar(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """Remember whose hours, then a month to pick the date in."""
    member = await core.catalogue.get_staff(callback_data.staff_id)
    await callback.answer()
    await state.clear()
    await state.set_data({"staff_id": member.id})
    await _calendar(callback, 0, cache, texts, clock, locale)


@routes.callback_query(Month.filter(F.purpose == PURPOSE))
async def turn_month(
    callback: CallbackQuery,
    callback_data: Month,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await callback.answer()
    await _calendar(callback, callback_data.offset, cache, texts, clock, locale)


async def _calendar(
    event: CallbackQuery,
    offset: int,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await admin_calendar(
        event,
        purpose=PURPOSE,
        offset=offset,
        cache=cache,
        texts=texts,
        clock=clock,
        locale=locale,
        title_key="adm_date_hours_pick",
        back="staff",
    )


async def _day_screen(
    event: CallbackQuery | Message,
    *,
    staff_id: int,
    day: date,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
    note: str = "",
) -> None:
    member = await core.catalogue.get_staff(staff_id)
    intervals, source = await core.catalogue.hours_on(day, staff_id=staff_id)
    text = texts(
        locale,
        "adm_date_hours",
        name=member.name,
        day=texts.day(locale, day),
        hours=_hours_text(texts, locale, intervals),
        source=source,
    )
    code = day_code(day)
    rows = [
        [
            button(
                texts(locale, "adm_date_closed"),
                DateHours(staff_id=staff_id, day=code, action="x").pack(),
            )
        ]
    ]
    if source == "date":
        rows.append(
            [
                button(
                    texts(locale, "adm_date_weekly"),
                    DateHours(staff_id=staff_id, day=code, action="r").pack(),
                )
            ]
        )
    rows.append(
        [button(texts(locale, "btn_back"), StaffEdit(staff_id=staff_id, action="h").pack())]
    )
    await show(
        event, f"{note}\n\n{text}" if note else text, InlineKeyboardMarkup(inline_keyboard=rows)
    )


@routes.callback_query(PickDay.filter(F.purpose == PURPOSE))
async def picked_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """The date's hours now, a prompt to type new ones, and one-tap "closed" / "as every week"."""
    day = day_of(callback_data.day)
    staff_id = (await state.get_data()).get("staff_id")
    if staff_id is None:  # the calendar outlived its conversation (another screen came between)
        await callback.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await callback.answer()
    await state.set_state(OwnerInput.date_hours)
    await state.set_data({"staff_id": staff_id, "day": callback_data.day})
    await _day_screen(callback, staff_id=staff_id, day=day, core=core, texts=texts, locale=locale)


@routes.message(OwnerInput.date_hours, F.text)
async def save_hours(
    message: Message, state: FSMContext, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    """Typed hours for the date (``10-21``, ``9:00-13:00, 14:00-21:00``; ``-`` closes it)."""
    data = await state.get_data()
    staff_id, day = data["staff_id"], day_of(data["day"])
    try:
        intervals = parse_day_hours(message.text or "")
        await core.catalogue.set_date_exception(day, intervals, staff_id=staff_id)
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await _day_screen(
        message,
        staff_id=staff_id,
        day=day,
        core=core,
        texts=texts,
        locale=locale,
        note=texts(locale, "adm_saved"),
    )


@routes.callback_query(DateHours.filter())
async def closed_or_weekly(
    callback: CallbackQuery,
    callback_data: DateHours,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    day = day_of(callback_data.day)
    if callback_data.action == "x":
        await core.catalogue.set_date_exception(day, (), staff_id=callback_data.staff_id)
    elif callback_data.action == "r":
        await core.catalogue.clear_date_exception(day, staff_id=callback_data.staff_id)
    else:
        raise ValueError(f"unknown action {callback_data.action!r}")
    await callback.answer(texts(locale, "adm_saved"))
    await _day_screen(
        callback, staff_id=callback_data.staff_id, day=day, core=core, texts=texts, locale=locale
    )
