"""The owner moves a booking to another free time; the customer (and the other owners) are told."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from tenant_bot import views
from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import BookingError, SlotTaken
from tenant_bot.booking.models import Actor, Clock
from tenant_bot.cache import CatalogueCache
from tenant_bot.callbacks import Month, OwnerBooking, PickDay, PickTime, day_of
from tenant_bot.handlers.admin.booking_card import render_card
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier
from tenant_bot.routing import Routes
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_move")


async def _calendar(
    callback: CallbackQuery,
    data: dict[str, int],
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    text, markup = await views.calendar_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        clock=clock,
        service_id=data["service_id"],
        staff_id=data["staff_id"],
        offset=data.get("offset", 0),
        purpose="m",
        back=button(texts(locale, "btn_back"), OwnerBooking(booking_id=data["booking_id"]).pack()),
        title_key="pick_new_day",
    )
    await show(callback, text, markup)


@routes.callback_query(OwnerBooking.filter(F.action == "m"))
async def start_move(
    callback: CallbackQuery,
    callback_data: OwnerBooking,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    details = await core.bookings.get(callback_data.booking_id)
    if not details.booking.status.active:
        await callback.answer(texts(locale, "booking_gone"), show_alert=True)
        return
    await callback.answer()
    data = {
        "booking_id": details.booking.id,
        "service_id": details.booking.service_id,
        "staff_id": details.booking.staff_id,
        "offset": 0,
    }
    await state.set_state(OwnerInput.move_day)
    await state.set_data(data)
    await _calendar(callback, data, core, cache, texts, clock, locale)


@routes.callback_query(Month.filter(F.purpose == "m"), OwnerInput.move_day)
async def turn_month(
    callback: CallbackQuery,
    callback_data: Month,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
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
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
) -> None:
    day = day_of(callback_data.day)
    data = await state.get_data()
    (text, markup), has_times = await views.times_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        service_id=data["service_id"],
        staff_id=data["staff_id"],
        day=day,
    )
    if not has_times:
        await callback.answer(
            texts(locale, "day_full", day=texts.day(locale, day)), show_alert=True
        )
        return
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
    cache: CatalogueCache,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
) -> None:
    """Move atomically (owner rules: no notice limits); on refusal the booking keeps its time."""
    data = await state.get_data()
    owner = callback.from_user.id
    before = await core.bookings.get(data["booking_id"])
    try:
        await core.bookings.reschedule(
            data["booking_id"],
            new_start=datetime.fromtimestamp(callback_data.ts, UTC),
            new_staff_id=callback_data.staff_id,
            actor=Actor.owner(owner),
        )
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
    await notifier.booking_rescheduled(
        details, old_start=before.booking.starts_at, by="owner", actor_id=owner, settings=settings
    )
    await notifier.offer_freed_time(before.booking, settings=settings)
    await render_card(callback, details, cache, texts, locale)
