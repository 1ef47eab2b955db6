"""The end of the booking flow: the time, name and phone, the summary, and Confirm.

The draft's id is the booking's idempotency key: a double tap of "Confirm" (or a retried update)
gives one booking; a slot someone else just took is explained and fresh times are shown.

After the commit nothing is lost to a database refusal: the owners' (and the booked staff member's)
new-booking notices were armed in the booking's own transaction and the background loop sends them
(:mod:`tenant_bot.booking.notices`); the booking is read back for its confirmation screen a few times
over about a second (:meth:`~tenant_bot.booking.service.BookingService.read_back`), and if it still
cannot be read the customer is told it is most likely made and that its confirmation will follow: the
background loop sends that confirmation (``customer_booked``) unless this handler marked it shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from kit.routing import Routes
from tenant_bot import keyboards, views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import (
    BookingError,
    InvalidInput,
    LimitReached,
    SlotTaken,
    SlotUnavailable,
    StorageUnavailable,
)
from tenant_bot.booking.models import Actor, BookingStatus
from tenant_bot.calendar_files import send_booking_file
from tenant_bot.callbacks import (
    Draft,
    PickTime,
)
from tenant_bot.handlers.booking import show_times
from tenant_bot.handlers.common import sender_id, show, stale
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier
from tenant_bot.payments import Payments
from tenant_bot.states import BookingFlow
from tenant_bot.texts import BotTexts

routes = Routes("checkout")


@routes.callback_query(PickTime.filter(), BookingFlow.time)
async def pick_time(
    callback: CallbackQuery,
    callback_data: PickTime,
    state: FSMContext,
    cache: CatalogueReader,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    """Remember the start; go on to the name/phone questions or, for a known customer, the summary.

    The hot step of the flow: no database query (the draft carries the customer, the summary shows
    the catalogue as last found current, Confirm books only against the current one), the callback
    is answered after the screen is shown."""
    data = await state.get_data()
    data.update(ts=callback_data.ts, slot_staff=callback_data.staff_id)
    await state.set_data(data)
    if data.get("customer_id") and data.get("phone"):
        await cache.recent()
        await _summary(callback, state, cache, payments, texts, locale, data=data)
        await callback.answer()
        return
    await callback.answer()
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
    cache: CatalogueReader,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    """A shared contact (it must be the user's own) or a typed number, normalised by the core."""
    if message.contact is not None:
        if message.contact.user_id not in (None, sender_id(message)):
            await message.answer(texts(locale, "not_your_contact"))
            return
        raw = message.contact.phone_number
    else:
        raw = message.text or ""
    data = await state.get_data()
    try:
        customer = await core.customers.register(
            sender_id(message),
            name=data.get("name"),
            phone=raw,
            locale=locale,
        )
    except InvalidInput:
        await message.answer(texts(locale, "bad_phone"))
        return
    await state.update_data(customer_id=customer.id, phone=customer.phone)
    await message.answer(texts(locale, "contact_saved"), reply_markup=ReplyKeyboardRemove())
    await _summary(message, state, cache, payments, texts, locale)


async def _summary(
    event: CallbackQuery | Message,
    state: FSMContext,
    cache: CatalogueReader,
    payments: Payments,
    texts: BotTexts,
    locale: str,
    *,
    data: dict[str, Any] | None = None,
) -> None:
    """The summary with Confirm; ``data`` is the draft when the caller already holds it."""
    data = data if data is not None else await state.get_data()
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
    text += await payments.terms_before_paying(  # "" without a deposit
        service, locale=locale, customer_id=data.get("customer_id")
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
    cache: CatalogueReader,
    notifier: Notifier,
    payments: Payments,
    texts: BotTexts,
    locale: str,
    is_owner: bool,
) -> None:
    """Book the draft; a repeat of the same draft returns the same booking. A service with a
    deposit holds the seat and sends the invoice; the booking is confirmed once paid."""
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
            # the customer's chat: the owners' notices leave it out, and its confirmation is owed
            actor=Actor.customer(sender_id(callback)),
            idempotency_key=f"draft:{data['draft']}",
        )
    except SlotTaken:
        await callback.answer(texts(locale, "slot_just_taken"), show_alert=True)
        await show_times(callback, state, core, cache, texts, locale, note_key="slot_just_taken")
        return
    except SlotUnavailable as exc:
        await callback.answer()
        await show_times(callback, state, core, cache, texts, locale)
        assert callback.message is not None
        await callback.message.answer(error_text(texts, locale, exc))
        return
    except StorageUnavailable as exc:  # the database is away (or busy)
        # Nothing is wrong with the draft: keep the summary and its Confirm button, so the customer
        # taps Confirm again once the database is back (the draft's idempotency key makes a repeat
        # of a booking that did go through return that booking, never a second one).
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
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
    details = await core.bookings.read_back(booking.id)
    if details is None:  # committed, but the database refuses it back: say so, honestly
        await _booked_unread(callback, state, texts, locale, awaits_payment=booking.awaits_payment)
        return
    settings = await cache.settings()
    if booking.awaits_payment:
        await state.set_state(None)
        await payments.hold_taken(callback, details, settings=settings, locale=locale)
        return
    key = "booked_pending" if booking.status is BookingStatus.PENDING else "booked"
    await state.set_state(None)
    await show(
        callback,
        texts(locale, key, **views.booking_facts(texts, locale, details, settings)),
        keyboards.main_menu(texts, locale, is_owner=is_owner),
    )
    await notifier.mark_shown(booking.id)  # its durable copy is not sent
    await send_booking_file(notifier, core, details, settings)  # confirmed at once: its .ics


async def _booked_unread(
    callback: CallbackQuery,
    state: FSMContext,
    texts: BotTexts,
    locale: str,
    *,
    awaits_payment: bool,
) -> None:
    """The booking committed but cannot be read back. Its confirmation follows by the background
    loop once the database is back; a booking held for a deposit has no invoice without the
    database, so its customer taps Confirm again (the draft, kept, returns the same booking)."""
    assert callback.message is not None
    if awaits_payment:
        await callback.message.answer(texts(locale, "pay_unread"))
        return
    await state.set_state(None)
    await show(callback, texts(locale, "booked_unread"))


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
