"""The owner moves a booking to another free time; the customer (and the other owners) are told.

The picker offers what the core lets the owner do: times inside the customers' minimum notice
too (``notice=False``, as the owner's own booking picker); customers moving their bookings keep
the notice rule (:mod:`tenant_bot.handlers.my_bookings`)."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError, SlotTaken
from tenant_bot.booking.models import Actor, Clock
from tenant_bot.calendar_files import send_booking_file
from tenant_bot.callbacks import Month, OwnerBooking, PickDay, PickTime, day_of
from tenant_bot.handlers.admin.booking_card import render_card
from tenant_bot.handlers.common import show
from tenant_bot.handlers.day_and_time import (
    free_times_or_alert,
    move_draft,
    reschedule_to,
    show_calendar,
    tell_rescheduled,
)
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_move")


async def _calendar(
    callback: CallbackQuery,
    data: dict[str, int],
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await show_calendar(
        callback,
        data,
        core=core,
        cache=cache,
        texts=texts,
        clock=clock,
        locale=locale,
        purpose="m",
        back=button(texts(locale, "btn_back"), OwnerBooking(booking_id=data["booking_id"]).pack()),
        title_key="pick_new_day",
        notice=False,  # the owner's rules, as the owner's own booking picker
    )


@routes.callback_query(OwnerBooking.filter(F.action == "m"))
async def start_move(
    callback: CallbackQuery,
    callback_data: OwnerBooking,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    details = await core.bookings.get(callback_data.booking_id)
    if not details.booking.status.active:
        await callback.answer(texts(locale, "booking_gone"), show_alert=True)
        return
    await callback.answer()
    data = move_draft(details.booking)
    await state.set_state(OwnerInput.move_day)
    await state.set_data(data)
    await _calendar(callback, data, core, cache, texts, clock, locale)


@routes.callback_query(Month.filter(F.purpose == "m"), OwnerInput.move_day)
async def turn_month(
    callback: CallbackQuery,
    callback_data: Month,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await callback.answer()
    data = await state.update_data(offset=callback_data.offset)
    await _calendar(callback, data, core, cache, texts, clock, locale)


@routes.callback_query(PickDay.filter(F.purpose == "m"), OwnerInput.move_day)
async def pick_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    day = day_of(callback_data.day)
    data = await state.get_data()
    screen = await free_times_or_alert(
        callback, data, day=day, core=core, cache=cache, texts=texts, locale=locale, notice=False
    )
    if screen is None:
        return
    text, markup = screen
    await callback.answer()
    await state.set_state(OwnerInput.move_time)
    back = [
        button(
            texts(locale, "btn_back"),
            OwnerBooking(booking_id=data["booking_id"], action="m").pack(),
        )
    ]
    await show(
        callback, text, InlineKeyboardMarkup(inline_keyboard=[*markup.inline_keyboard[:-1], back])
    )


@routes.callback_query(PickTime.filter(), OwnerInput.move_time)
async def pick_time(
    callback: CallbackQuery,
    callback_data: PickTime,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
    clock: Clock,
) -> None:
    """Move atomically (owner rules: no notice limits); on refusal the booking keeps its time."""
    data = await state.get_data()
    owner = callback.from_user.id
    before = await core.bookings.get(data["booking_id"])
    try:
        await reschedule_to(core, data["booking_id"], callback_data, actor=Actor.owner(owner))
    except SlotTaken:
        await callback.answer(texts(locale, "slot_just_taken"), show_alert=True)
        return
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    await state.clear()
    await callback.answer(texts(locale, "adm_moved"))
    details = await core.bookings.get(data["booking_id"])
    settings = await cache.settings()
    await tell_rescheduled(
        notifier, details, before=before.booking, by="owner", actor_id=owner, settings=settings
    )
    await send_booking_file(notifier, core, details, settings)  # the customer's new .ics
    await render_card(callback, core, details, cache, texts, locale, clock)
