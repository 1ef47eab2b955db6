"""My bookings: the customer's upcoming bookings, with cancel and reschedule within the rules."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import F
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot import keyboards, views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError, SlotTaken, TooLate
from tenant_bot.booking.models import Actor, BookingDetails, Clock
from tenant_bot.calendar_files import send_booking_file
from tenant_bot.callbacks import Menu, Month, MoveConfirm, MyBooking, PickDay, PickTime, day_of
from tenant_bot.handlers.common import sender_id, show
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
from tenant_bot.payments import Payments
from tenant_bot.states import RescheduleFlow
from tenant_bot.texts import BotTexts

routes = Routes("my_bookings")


@routes.message(Command("my"))
@routes.callback_query(Menu.filter(F.action == "my"))
async def my_bookings(
    event: Message | CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """The list of upcoming bookings (or an invitation to book)."""
    if isinstance(event, CallbackQuery):
        await event.answer()
    await state.clear()
    customer = await core.customers.by_telegram_id(sender_id(event))
    items = await core.bookings.for_customer(customer.id) if customer else []
    settings = await cache.settings()
    labelled = [(d, views.booking_label(texts, locale, d, settings)) for d in items]
    key = "my_bookings" if items else "my_bookings_empty"
    await show(event, texts(locale, key), keyboards.my_bookings(texts, locale, labelled))


async def _own(core: BookingCore, booking_id: int, user_id: int) -> BookingDetails | None:
    """The booking if it belongs to the user and is still active, else None (a stale button)."""
    try:
        details = await core.bookings.get(booking_id)
    except BookingError:
        return None
    if details.customer_telegram_id != user_id or not details.booking.status.active:
        return None
    return details


async def _gone(callback: CallbackQuery, texts: BotTexts, locale: str) -> None:
    await callback.answer(texts(locale, "booking_gone"), show_alert=True)
    await _with_menu(callback, texts(locale, "menu"), texts, locale)


async def _own_or_gone(
    callback: CallbackQuery, core: BookingCore, booking_id: int, texts: BotTexts, locale: str
) -> BookingDetails | None:
    """The tapped booking if it is still the user's and active; else None after saying it is
    gone."""
    details = await _own(core, booking_id, callback.from_user.id)
    if details is None:
        await _gone(callback, texts, locale)
    return details


async def _with_menu(callback: CallbackQuery, text: str, texts: BotTexts, locale: str) -> None:
    """``text`` above the customer's main menu."""
    await show(callback, text, keyboards.main_menu(texts, locale, is_owner=False))


@routes.callback_query(MyBooking.filter(F.action == "v"))
async def view(
    callback: CallbackQuery,
    callback_data: MyBooking,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    details = await _own_or_gone(callback, core, callback_data.booking_id, texts, locale)
    if details is None:
        return
    await state.clear()
    await callback.answer()
    settings = await cache.settings()
    facts = views.booking_facts(texts, locale, details, settings)
    await show(
        callback,
        texts(locale, "my_booking", **facts),
        keyboards.my_booking(texts, locale, details.booking.id),
    )


@routes.callback_query(MyBooking.filter(F.action == "c"))
async def ask_cancel(
    callback: CallbackQuery,
    callback_data: MyBooking,
    core: BookingCore,
    cache: CatalogueReader,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    """The question before cancelling, naming the booking: service, staff, day and time (and what
    happens to a paid deposit)."""
    details = await _own_or_gone(callback, core, callback_data.booking_id, texts, locale)
    if details is None:
        return
    await callback.answer()
    facts = views.booking_facts(texts, locale, details, await cache.settings())
    await show(
        callback,
        texts(locale, "cancel_sure_booking", **facts)
        + await payments.terms_before_cancelling(details.booking, locale=locale),
        keyboards.cancel_confirm(texts, locale, callback_data.booking_id),
    )


@routes.callback_query(MyBooking.filter(F.action == "cy"))
async def cancel(
    callback: CallbackQuery,
    callback_data: MyBooking,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    """Cancel (customers need the minimum notice); the owner and the waitlist are told; a paid
    deposit is returned or kept as the policy says."""
    if await _own_or_gone(callback, core, callback_data.booking_id, texts, locale) is None:
        return
    try:
        booking = await core.bookings.cancel(
            callback_data.booking_id, actor=Actor.customer(callback.from_user.id)
        )
    except TooLate as exc:
        await callback.answer()
        await _with_menu(callback, error_text(texts, locale, exc), texts, locale)
        return
    await callback.answer()
    await _with_menu(
        callback,
        texts(locale, "cancelled_by_you") + payments.deposit_after_cancel(booking, locale=locale),
        texts,
        locale,
    )
    details = await core.bookings.get(booking.id)
    await payments.refund_due_notice(details)
    await notifier.booking_cancelled(details, by="customer", settings=await cache.settings())
    await notifier.offer_freed_time(booking, settings=await cache.settings())


@routes.callback_query(MyBooking.filter(F.action == "r"))
async def start_reschedule(
    callback: CallbackQuery,
    callback_data: MyBooking,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    details = await _own_or_gone(callback, core, callback_data.booking_id, texts, locale)
    if details is None:
        return
    await callback.answer()
    await state.set_state(RescheduleFlow.day)
    await state.set_data(move_draft(details.booking))
    await _calendar(callback, state, core, cache, texts, clock, locale)


async def _calendar(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    data = await state.get_data()
    await show_calendar(
        callback,
        data,
        core=core,
        cache=cache,
        texts=texts,
        clock=clock,
        locale=locale,
        purpose="r",
        back=button(texts(locale, "btn_back"), MyBooking(booking_id=data["booking_id"]).pack()),
        title_key="pick_new_day",
        state=state,
        day_state=RescheduleFlow.day,
    )


@routes.callback_query(Month.filter(F.purpose == "r"), RescheduleFlow.day)
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
    await state.update_data(offset=callback_data.offset)
    await _calendar(callback, state, core, cache, texts, clock, locale)


@routes.callback_query(
    PickDay.filter(F.purpose == "r"), StateFilter(RescheduleFlow.day, RescheduleFlow.confirm)
)
async def pick_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """The free times of the tapped day (also the way back from the confirm step)."""
    day = day_of(callback_data.day)
    data = await state.get_data()
    screen = await free_times_or_alert(
        callback, data, day=day, core=core, cache=cache, texts=texts, locale=locale
    )
    if screen is None:
        return
    await callback.answer()
    await state.update_data(day=callback_data.day)
    await state.set_state(RescheduleFlow.time)
    await show(callback, *screen)


@routes.callback_query(PickTime.filter(), RescheduleFlow.time)
async def pick_time(
    callback: CallbackQuery,
    callback_data: PickTime,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """Ask before moving: the booking, its old time and the tapped one; confirm or go back."""
    data = await state.get_data()
    before = await _own(core, data["booking_id"], callback.from_user.id)
    if before is None:
        await state.clear()
        await _gone(callback, texts, locale)
        return
    settings = await cache.settings()
    new_start = datetime.fromtimestamp(callback_data.ts, UTC)
    text = texts(
        locale,
        "move_sure",
        service=before.service_name,
        staff=await cache.staff_name(callback_data.staff_id),
        old_when=texts.when(locale, before.booking.starts_at, settings.zone),
        new_when=texts.when(locale, new_start, settings.zone),
    )
    confirm = MoveConfirm(ts=callback_data.ts, staff_id=callback_data.staff_id).pack()
    back = PickDay(day=data["day"], purpose="r").pack()
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [button(texts(locale, "btn_yes_move"), confirm)],
            [button(texts(locale, "btn_back"), back)],
        ]
    )
    await callback.answer()
    await state.set_state(RescheduleFlow.confirm)
    await show(callback, text, markup)


@routes.callback_query(MoveConfirm.filter(), RescheduleFlow.confirm)
async def confirm_move(
    callback: CallbackQuery,
    callback_data: MoveConfirm,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """Move the booking atomically; on refusal the old time stays and the customer sees why."""
    data = await state.get_data()
    before = await _own(core, data["booking_id"], callback.from_user.id)
    if before is None:
        await state.clear()
        await _gone(callback, texts, locale)
        return
    picked = PickTime(ts=callback_data.ts, staff_id=callback_data.staff_id)
    try:
        moved = await reschedule_to(
            core, data["booking_id"], picked, actor=Actor.customer(callback.from_user.id)
        )
    except SlotTaken:
        await callback.answer(texts(locale, "slot_just_taken"), show_alert=True)
        await pick_day(
            callback,
            PickDay(day=data["day"], purpose="r"),
            state,
            core,
            cache,
            texts,
            clock,
            locale,
        )
        return
    except BookingError as exc:
        await callback.answer()
        await state.clear()
        await _with_menu(callback, error_text(texts, locale, exc), texts, locale)
        return
    await callback.answer()
    await state.clear()
    settings = await cache.settings()
    details = await core.bookings.get(moved.id)
    facts = views.booking_facts(texts, locale, details, settings)
    await _with_menu(callback, texts(locale, "rescheduled_by_you", **facts), texts, locale)
    await tell_rescheduled(
        notifier, details, before=before.booking, by="customer", settings=settings
    )
    await send_booking_file(notifier, core, details, settings)  # the moved booking's new .ics
