"""The customer's booking flow: service -> staff -> day -> time -> name -> phone -> confirm.

The draft lives in the FSM (Redis), so a restart mid-conversation continues where it was. Its id is
the booking's idempotency key: a double tap of "Confirm" (or a retried update) gives one booking.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from aiogram import F
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from tenant_bot import keyboards, views
from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import (
    BookingError,
    InvalidInput,
    LimitReached,
    NotFound,
    SlotTaken,
    SlotUnavailable,
)
from tenant_bot.booking.models import BookingStatus, Clock
from tenant_bot.cache import CatalogueCache
from tenant_bot.callbacks import (
    Back,
    Draft,
    Menu,
    Month,
    PickDay,
    PickService,
    PickStaff,
    PickTime,
    Waitlist,
    day_of,
)
from tenant_bot.handlers.common import show, stale
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier
from tenant_bot.routing import Routes
from tenant_bot.states import BookingFlow
from tenant_bot.texts import BotTexts

routes = Routes("booking")


async def _services_screen(
    event: CallbackQuery | Message, cache: CatalogueCache, texts: BotTexts, locale: str
) -> None:
    services = await cache.services()
    if not services:
        await show(
            event, texts(locale, "no_services"), keyboards.main_menu(texts, locale, is_owner=False)
        )
        return
    await show(event, texts(locale, "pick_service"), keyboards.services(texts, locale, services))


@routes.message(Command("book"))
@routes.callback_query(Menu.filter(F.action == "book"))
async def start_booking(
    event: Message | CallbackQuery,
    state: FSMContext,
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
) -> None:
    """A new draft (a fresh idempotency key) and the list of services."""
    if isinstance(event, CallbackQuery):
        await event.answer()
    await state.clear()
    await state.set_state(BookingFlow.service)
    await state.set_data({"draft": secrets.token_hex(6)})
    await _services_screen(event, cache, texts, locale)


@routes.callback_query(PickService.filter(), BookingFlow.service)
async def pick_service(
    callback: CallbackQuery,
    callback_data: PickService,
    state: FSMContext,
    cache: CatalogueCache,
    core: BookingCore,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    service = await cache.service(callback_data.service_id)
    staff = await cache.staff_for(service.id)
    await callback.answer()
    await state.update_data(service_id=service.id, staff_id=0, offset=0)
    if len(staff) > 1:
        await state.set_state(BookingFlow.staff)
        await show(
            callback,
            texts(locale, "pick_staff", service=service.name),
            keyboards.staff(texts, locale, staff),
        )
        return
    await _calendar(callback, state, core, cache, texts, clock, locale)


@routes.callback_query(PickStaff.filter(), BookingFlow.staff)
async def pick_staff(
    callback: CallbackQuery,
    callback_data: PickStaff,
    state: FSMContext,
    cache: CatalogueCache,
    core: BookingCore,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    data = await state.get_data()
    staff = await cache.staff_for(data["service_id"])
    if callback_data.staff_id and callback_data.staff_id not in {m.id for m in staff}:
        raise NotFound("no such staff member", entity="staff")
    await callback.answer()
    await state.update_data(staff_id=callback_data.staff_id, offset=0)
    await _calendar(callback, state, core, cache, texts, clock, locale)


async def _calendar(
    event: CallbackQuery | Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    data = await state.get_data()
    staff = await cache.staff_for(data["service_id"])
    back_step = "staff" if len(staff) > 1 else "service"
    text, markup = await views.calendar_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        clock=clock,
        service_id=data["service_id"],
        staff_id=data.get("staff_id") or None,
        offset=data.get("offset", 0),
        purpose="b",
        back=button(texts(locale, "btn_back"), Back(step=back_step).pack()),
    )
    await state.set_state(BookingFlow.day)
    await show(event, text, markup)


@routes.callback_query(Month.filter(F.purpose == "b"), BookingFlow.day)
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
    await state.update_data(offset=callback_data.offset)
    await _calendar(callback, state, core, cache, texts, clock, locale)


async def _times(
    event: CallbackQuery | Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
    note_key: str | None = None,
) -> None:
    data = await state.get_data()
    (text, markup), _ = await views.times_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        service_id=data["service_id"],
        staff_id=data.get("staff_id") or None,
        day=day_of(data["day"]),
        note_key=note_key,
    )
    await state.set_state(BookingFlow.time)
    await show(event, text, markup)


@routes.callback_query(PickDay.filter(F.purpose == "b"), BookingFlow.day)
async def pick_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
) -> None:
    day_of(callback_data.day)  # a malformed date is a stale button
    await callback.answer()
    await state.update_data(day=callback_data.day)
    await _times(callback, state, core, cache, texts, locale)


@routes.callback_query(PickTime.filter(), BookingFlow.time)
async def pick_time(
    callback: CallbackQuery,
    callback_data: PickTime,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
) -> None:
    """Remember the start; go on to the name/phone questions or, for a known customer, the summary."""
    await state.update_data(ts=callback_data.ts, slot_staff=callback_data.staff_id)
    await callback.answer()
    customer = await core.customers.by_telegram_id(callback.from_user.id)
    if customer is not None and customer.name and customer.phone:
        await state.update_data(customer_id=customer.id, name=customer.name, phone=customer.phone)
        await _summary(callback, state, cache, texts, locale)
        return
    await state.set_state(BookingFlow.name)
    assert callback.message is not None
    await callback.message.answer(
        texts(locale, "ask_name"),
        reply_markup=keyboards.ask_name(texts, locale, callback.from_user.full_name),
    )


@routes.message(BookingFlow.name, F.text)
async def got_name(message: Message, state: FSMContext, texts: BotTexts, locale: str) -> None:
    name = (message.text or "").strip()
    if not 1 <= len(name) <= 100 or name.startswith("/"):
        await message.answer(texts(locale, "bad_name"))
        return
    await state.update_data(name=name)
    await state.set_state(BookingFlow.phone)
    await message.answer(
        texts(locale, "ask_phone"), reply_markup=keyboards.ask_phone(texts, locale)
    )


@routes.message(BookingFlow.phone, F.contact)
@routes.message(BookingFlow.phone, F.text)
async def got_phone(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
) -> None:
    """A shared contact (it must be the user's own) or a typed number, normalised by the core."""
    if message.contact is not None:
        if message.contact.user_id not in (None, message.from_user.id):  # type: ignore[union-attr]
            await message.answer(texts(locale, "not_your_contact"))
            return
        raw = message.contact.phone_number
    else:
        raw = message.text or ""
    data = await state.get_data()
    try:
        customer = await core.customers.register(
            message.from_user.id,  # type: ignore[union-attr]
            name=data.get("name"),
            phone=raw,
            locale=locale,
        )
    except InvalidInput:
        await message.answer(texts(locale, "bad_phone"))
        return
    await state.update_data(customer_id=customer.id, phone=customer.phone)
    await message.answer(texts(locale, "contact_saved"), reply_markup=ReplyKeyboardRemove())
    await _summary(message, state, cache, texts, locale)


async def _summary(
    event: CallbackQuery | Message,
    state: FSMContext,
    cache: CatalogueCache,
    texts: BotTexts,
    locale: str,
) -> None:
    data = await state.get_data()
    settings = await cache.settings()
    service = await cache.service(data["service_id"])
    start = datetime.fromtimestamp(data["ts"], UTC)
    staff_name = await cache.staff_name(data["slot_staff"])
    text = texts(
        locale,
        "summary",
        service=service.name,
        staff=staff_name if data.get("staff_id") else texts(locale, "anyone"),
        when=texts.when(locale, start, settings.zone),
        duration=texts.duration(locale, service.duration_minutes),
        price=texts.money(service.price, service.currency),
        name=data.get("name", ""),
        phone=data.get("phone", ""),
        needs_confirmation=settings.confirmation_required,
    )
    await state.set_state(BookingFlow.confirm)
    if isinstance(event, CallbackQuery):
        await show(event, text, keyboards.summary(texts, locale, data["draft"]))
    else:
        await event.answer(text, reply_markup=keyboards.summary(texts, locale, data["draft"]))


@routes.callback_query(Draft.filter(F.action == "ok"))
async def confirm(
    callback: CallbackQuery,
    callback_data: Draft,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
    is_owner: bool,
) -> None:
    """Book the draft; a repeat of the same draft returns the same booking."""
    data = await state.get_data()
    if data.get("draft") != callback_data.draft or "ts" not in data or "customer_id" not in data:
        await stale(callback, texts, locale, is_owner=is_owner)
        return
    try:
        booking = await core.bookings.book(
            customer_id=data["customer_id"],
            service_id=data["service_id"],
            start=datetime.fromtimestamp(data["ts"], UTC),
            staff_id=data.get("staff_id") or None,
            idempotency_key=f"draft:{data['draft']}",
        )
    except SlotTaken:
        await callback.answer(texts(locale, "slot_just_taken"), show_alert=True)
        await _times(callback, state, core, cache, texts, locale, note_key="slot_just_taken")
        return
    except SlotUnavailable as exc:
        await callback.answer()
        await _times(callback, state, core, cache, texts, locale)
        assert callback.message is not None
        await callback.message.answer(error_text(texts, locale, exc))
        return
    except (LimitReached, BookingError) as exc:
        await callback.answer()
        await show(
            callback,
            error_text(texts, locale, exc),
            keyboards.main_menu(texts, locale, is_owner=is_owner),
        )
        await state.set_state(None)
        return
    await callback.answer()
    details = await core.bookings.get(booking.id)
    settings = await cache.settings()
    key = "booked_pending" if booking.status is BookingStatus.PENDING else "booked"
    await state.set_state(None)
    await show(
        callback,
        texts(locale, key, **views.booking_facts(texts, locale, details, settings)),
        keyboards.main_menu(texts, locale, is_owner=is_owner),
    )
    await notifier.booking_created(details, settings=settings)


@routes.callback_query(Draft.filter(F.action == "x"))
async def abandon(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str, is_owner: bool
) -> None:
    await state.clear()
    await callback.answer()
    await show(
        callback,
        texts(locale, "booking_abandoned"),
        keyboards.main_menu(texts, locale, is_owner=is_owner),
    )


@routes.callback_query(Back.filter(), StateFilter(BookingFlow))
async def back(
    callback: CallbackQuery,
    callback_data: Back,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueCache,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """One step back in the flow (the draft keeps what was chosen before)."""
    await callback.answer()
    data: dict[str, Any] = await state.get_data()
    step = callback_data.step
    if step == "service" or "service_id" not in data:
        await state.set_state(BookingFlow.service)
        await _services_screen(callback, cache, texts, locale)
    elif step == "staff":
        await state.set_state(BookingFlow.staff)
        service = await cache.service(data["service_id"])
        staff = await cache.staff_for(service.id)
        await show(
            callback,
            texts(locale, "pick_staff", service=service.name),
            keyboards.staff(texts, locale, staff),
        )
    elif step == "time" and "day" in data:
        await _times(callback, state, core, cache, texts, locale)
    else:
        await _calendar(callback, state, core, cache, texts, clock, locale)


@routes.callback_query(Waitlist.filter(), BookingFlow.time)
async def join_waitlist(
    callback: CallbackQuery,
    callback_data: Waitlist,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
    is_owner: bool,
) -> None:
    """Wait for a free time on a full day; the bot writes when a booking there is cancelled."""
    data = await state.get_data()
    day = day_of(callback_data.day)
    customer = await core.customers.register(
        callback.from_user.id,
        name=data.get("name") or callback.from_user.full_name,
        locale=locale,
    )
    await core.waitlist.join(
        customer_id=customer.id,
        service_id=data["service_id"],
        day=day,
        staff_id=data.get("staff_id") or None,
    )
    await callback.answer()
    await state.clear()
    await show(
        callback,
        texts(locale, "waitlist_joined", day=texts.day(locale, day)),
        keyboards.main_menu(texts, locale, is_owner=is_owner),
    )
