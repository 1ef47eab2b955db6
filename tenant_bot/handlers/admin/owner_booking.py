"""The owner books for a customer who called or walked in: the customers' slot picker (service,
staff, day, time), then the customer from the client book (found by phone or name) or a new one;
the booking core applies the same rules as to customers' bookings (overlaps, capacity, the
customer's limit unless the owner overrides it). A walk-in "now" is two taps: the menu's
"Walk-in now", then the service.

The same handlers serve a staff member's /staff menu (:mod:`tenant_bot.handlers.staff_desk`):
its router filter passes ``own_staff_id``, which pins the staff to that member at every step
(a forged staff or time of another member is refused as a stale button) and leads back to the
staff menu instead of the owner's.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot import keyboards, views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError, InvalidInput, LimitReached, SlotUnavailable
from tenant_bot.booking.models import Actor, BookingDetails, Clock, Customer
from tenant_bot.callbacks import (
    Admin,
    Back,
    Desk,
    Month,
    OwnerNew,
    PickDay,
    PickService,
    PickStaff,
    PickTime,
    day_of,
)
from tenant_bot.handlers.admin.booking_card import render_card
from tenant_bot.handlers.admin.common import back_to_menu
from tenant_bot.handlers.common import sender_id, show, stale
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier
from tenant_bot.states import OwnerBookingFlow
from tenant_bot.texts import BotTexts

routes = Routes("admin_owner_booking")

PURPOSE = "o"
_PHONE = re.compile(r"\+?[\d\s()\-]{7,}")
MAX_MATCHES = 8


@routes.callback_query(Admin.filter(F.section == "nb"))
async def start(
    callback: CallbackQuery,
    state: FSMContext,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    """A new draft (its token is the booking's idempotency key) and the services."""
    await callback.answer()
    await state.set_state(OwnerBookingFlow.service)
    await state.set_data({"draft": secrets.token_hex(6), "own": own_staff_id})
    await _services(callback, cache, texts, locale, own_staff_id)


def menu_row(texts: BotTexts, locale: str, own_staff_id: int | None) -> list[Any]:
    """Back to the owner menu, or to the staff menu of a staff member."""
    if own_staff_id is None:
        return back_to_menu(texts, locale)
    return [button(texts(locale, "btn_back"), Desk(action="menu").pack())]


async def _services(
    event: CallbackQuery,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    own_staff_id: int | None,
) -> None:
    markup = keyboards.services(texts, locale, await _offered(cache, own_staff_id))
    markup.inline_keyboard.append(menu_row(texts, locale, own_staff_id))
    await show(event, texts(locale, "adm_nb_service"), markup)


async def _offered(cache: CatalogueReader, own_staff_id: int | None) -> list[Any]:
    """The services to book: all of them, or those a staff member provides."""
    services = await cache.services()
    if own_staff_id is None:
        return list(services)
    mine = {m.id: m for m in await cache.all_staff()}.get(own_staff_id)
    return [s for s in services if mine is not None and s.id in mine.service_ids]


@routes.callback_query(PickService.filter(), OwnerBookingFlow.service)
async def pick_service(
    callback: CallbackQuery,
    callback_data: PickService,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    service = await cache.service(callback_data.service_id)
    staff = await cache.staff_for(service.id)
    if own_staff_id is not None:  # a staff member books only with themselves
        staff = [m for m in staff if m.id == own_staff_id]
        if not staff:
            await stale(callback, texts, locale, is_owner=False)
            return
    await callback.answer()
    await state.update_data(service_id=service.id, staff_id=staff[0].id if len(staff) == 1 else 0)
    if len(staff) > 1:
        await state.set_state(OwnerBookingFlow.staff)
        await show(
            callback,
            texts(locale, "pick_staff", service=service.name),
            keyboards.staff(texts, locale, staff),
        )
        return
    await _calendar(callback, state, core, cache, texts, clock, locale)


@routes.callback_query(PickStaff.filter(), OwnerBookingFlow.staff)
async def pick_staff(
    callback: CallbackQuery,
    callback_data: PickStaff,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    if own_staff_id is not None and callback_data.staff_id != own_staff_id:
        await stale(callback, texts, locale, is_owner=False)
        return
    await callback.answer()
    await state.update_data(staff_id=callback_data.staff_id, offset=0)
    await _calendar(callback, state, core, cache, texts, clock, locale)


async def _calendar(
    event: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    data = await state.get_data()
    text, markup = await views.calendar_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        clock=clock,
        service_id=data["service_id"],
        staff_id=data.get("staff_id") or None,
        offset=data.get("offset", 0),
        purpose=PURPOSE,
        back=button(texts(locale, "btn_back"), Back(step="service").pack()),
        notice=False,  # the core lets the owner (and staff) book inside the customers' notice
    )
    await state.set_state(OwnerBookingFlow.day)
    await show(event, text, markup)


@routes.callback_query(Month.filter(F.purpose == PURPOSE), OwnerBookingFlow.day)
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


@routes.callback_query(PickDay.filter(F.purpose == PURPOSE), OwnerBookingFlow.day)
async def pick_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    day_of(callback_data.day)
    await callback.answer()
    await state.update_data(day=callback_data.day)
    await _times(callback, state, core, cache, texts, locale)


async def _times(
    event: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    note_key: str | None = None,
) -> None:
    data = await state.get_data()
    (text, markup), has_times = await views.times_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        service_id=data["service_id"],
        staff_id=data.get("staff_id") or None,
        day=day_of(data["day"]),
        note_key=note_key,
        notice=False,
    )
    if not has_times:  # no waitlist for the owner: another day
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[button(texts(locale, "btn_other_day"), Back(step="day").pack())]]
        )
    await state.set_state(OwnerBookingFlow.time)
    await show(event, text, markup)


@routes.callback_query(Back.filter(), OwnerBookingFlow.service)
@routes.callback_query(Back.filter(), OwnerBookingFlow.staff)
@routes.callback_query(Back.filter(), OwnerBookingFlow.day)
@routes.callback_query(Back.filter(), OwnerBookingFlow.time)
@routes.callback_query(Back.filter(), OwnerBookingFlow.customer)
@routes.callback_query(Back.filter(), OwnerBookingFlow.confirm)
async def back(
    callback: CallbackQuery,
    callback_data: Back,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    await callback.answer()
    data = await state.get_data()
    if callback_data.step == "service" or "service_id" not in data:
        await state.set_state(OwnerBookingFlow.service)
        await _services(callback, cache, texts, locale, own_staff_id)
    elif callback_data.step == "time" and "day" in data:
        await _times(callback, state, core, cache, texts, locale)
    else:
        await _calendar(callback, state, core, cache, texts, clock, locale)


@routes.callback_query(PickTime.filter(), OwnerBookingFlow.time)
async def pick_time(
    callback: CallbackQuery,
    callback_data: PickTime,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    """The customer next; one already chosen (another time after a taken one) goes straight to
    the summary."""
    if own_staff_id is not None and callback_data.staff_id != own_staff_id:
        await stale(callback, texts, locale, is_owner=False)
        return
    await callback.answer()
    await state.update_data(ts=callback_data.ts, slot_staff=callback_data.staff_id)
    customer_id = (await state.get_data()).get("customer_id")
    if customer_id is not None:
        customer = (await core.clients.card(customer_id)).customer
        await _confirm(callback, state, customer, cache, texts, locale)
        return
    await state.set_state(OwnerBookingFlow.customer)
    await show(
        callback,
        texts(locale, "adm_nb_who"),
        InlineKeyboardMarkup(
            inline_keyboard=[[button(texts(locale, "btn_back"), Back(step="time").pack())]]
        ),
    )


def split_contact(text: str) -> tuple[str, str | None]:
    """``Anna +7 916 123-45-67`` -> (``Anna``, ``+7 916 123-45-67``); no phone -> (text, None)."""
    match = _PHONE.search(text)
    if match is None or sum(ch.isdigit() for ch in match.group()) < 7:
        return " ".join(text.split()), None
    name = (text[: match.start()] + " " + text[match.end() :]).strip(" ,;")
    return " ".join(name.split()), match.group().strip()


@routes.message(OwnerBookingFlow.customer, F.text)
async def who(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """A phone finds the customer (or makes a new one with the name typed beside it); a name
    searches the client book."""
    name, phone = split_contact(message.text or "")
    if phone is not None:
        try:
            customer, _ = await core.clients.find_or_add(name=name or None, phone=phone)
        except InvalidInput as exc:
            if exc.details.get("field") != "name":
                await message.answer(error_text(texts, locale, exc))
                return
            await state.update_data(phone=phone)
            await state.set_state(OwnerBookingFlow.name)
            await message.answer(texts(locale, "adm_nb_new_name"))
            return
        except BookingError as exc:
            await message.answer(error_text(texts, locale, exc))
            return
        await _confirm(message, state, customer, cache, texts, locale)
        return
    if not name or name.startswith("/"):
        await message.answer(texts(locale, "adm_nb_who"))
        return
    matches = (await core.clients.search(name))[:MAX_MATCHES]
    rows = [
        [button(f"{c.name} {c.phone or ''}".strip()[:60], OwnerNew(action="c", id=c.id).pack())]
        for c in matches
    ]
    rows.append([button(texts(locale, "adm_nb_add", name=name[:40]), OwnerNew(action="c").pack())])
    rows.append([button(texts(locale, "btn_back"), Back(step="time").pack())])
    await state.update_data(new_name=name[:200])
    key = "adm_nb_matches" if matches else "adm_nb_no_matches"
    await message.answer(
        texts(locale, key, name=name), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )


@routes.message(OwnerBookingFlow.name, F.text)
async def new_name(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    data = await state.get_data()
    try:
        customer, _ = await core.clients.find_or_add(
            name=(message.text or "").strip(), phone=data.get("phone")
        )
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await _confirm(message, state, customer, cache, texts, locale)


@routes.callback_query(OwnerNew.filter(F.action == "c"), OwnerBookingFlow.customer)
async def chosen(
    callback: CallbackQuery,
    callback_data: OwnerNew,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    if callback_data.id:
        customer = (await core.clients.card(callback_data.id)).customer
    else:
        name = (await state.get_data()).get("new_name") or ""
        customer, _ = await core.clients.find_or_add(name=name, phone=None)
    await callback.answer()
    await _confirm(callback, state, customer, cache, texts, locale)


async def _confirm(
    event: CallbackQuery | Message,
    state: FSMContext,
    customer: Customer,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    *,
    over_limit: bool = False,
) -> None:
    data = await state.get_data()
    await state.update_data(customer_id=customer.id)
    await state.set_state(OwnerBookingFlow.confirm)
    settings = await cache.settings()
    service = await cache.service(data["service_id"])
    start = datetime.fromtimestamp(data["ts"], UTC)
    text = texts(
        locale,
        "adm_nb_confirm",
        service=service.name,
        staff=await cache.staff_name(data["slot_staff"]),
        when=texts.when(locale, start, settings.zone),
        customer=customer.name,
        phone=customer.phone or "",
        chat=customer.telegram_user_id is not None,
    )
    if over_limit:
        rows = [[button(texts(locale, "adm_nb_over_limit"), OwnerNew(action="ov").pack())]]
    else:
        rows = [[button(texts(locale, "adm_nb_book"), OwnerNew(action="ok").pack())]]
        if customer.telegram_user_id is not None:
            rows.append([button(texts(locale, "adm_nb_book_tell"), OwnerNew(action="okn").pack())])
    rows.append([button(texts(locale, "btn_change_time"), Back(step="time").pack())])
    rows.append(menu_row(texts, locale, data.get("own")))
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(OwnerNew.filter(F.action.in_({"ok", "okn", "ov"})), OwnerBookingFlow.confirm)
async def book(
    callback: CallbackQuery,
    callback_data: OwnerNew,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    """Book through the core; a taken slot shows the free times again, a customer at their limit
    asks the owner to confirm booking over it. A staff member books as the owner does (the
    history records their Telegram id), on their own schedule only."""
    data: dict[str, Any] = await state.get_data()
    if data.get("own") != own_staff_id or (
        own_staff_id is not None and data.get("slot_staff") != own_staff_id
    ):
        await stale(callback, texts, locale, is_owner=own_staff_id is None)
        return
    owner = sender_id(callback)
    tell = callback_data.action == "okn" or bool(data.get("tell"))
    try:
        booking = await core.bookings.book(
            customer_id=data["customer_id"],
            service_id=data["service_id"],
            staff_id=data["slot_staff"],
            start=datetime.fromtimestamp(data["ts"], UTC),
            actor=Actor.owner(owner),
            idempotency_key=f"owner:{data['draft']}",
            enforce_limit=callback_data.action != "ov",
        )
    except LimitReached:
        await callback.answer(texts(locale, "adm_nb_limit"), show_alert=True)
        await state.update_data(tell=tell)
        customer = (await core.clients.card(data["customer_id"])).customer
        await _confirm(callback, state, customer, cache, texts, locale, over_limit=True)
        return
    except SlotUnavailable:
        await callback.answer(texts(locale, "slot_just_taken"), show_alert=True)
        await _times(callback, state, core, cache, texts, locale)
        return
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    await state.clear()
    await callback.answer(texts(locale, "adm_nb_booked"))
    details = await core.bookings.get(booking.id)
    # the other owners' and the staff member's notices were armed with the booking (durable)
    if tell:
        await notifier.booking_confirmed(details, settings=await cache.settings())
    await _booked(callback, core, details, cache, texts, locale, clock, own_staff_id)


async def _booked(
    callback: CallbackQuery,
    core: BookingCore,
    details: BookingDetails,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    clock: Clock,
    own_staff_id: int | None,
) -> None:
    """The owner's booking card, or for a staff member the booking and their menu."""
    if own_staff_id is None:
        await render_card(callback, core, details, cache, texts, locale, clock)
        return
    settings = await cache.settings()
    await show(
        callback,
        texts(locale, "desk_booked", **views.booking_facts(texts, locale, details, settings)),
        InlineKeyboardMarkup(inline_keyboard=[menu_row(texts, locale, own_staff_id)]),
    )


@routes.callback_query(Admin.filter(F.section == "wi"))
async def walk_in_services(
    callback: CallbackQuery,
    state: FSMContext,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    """Tap one of two: which service the person at the door wants."""
    await callback.answer()
    await state.clear()
    offered = await _offered(cache, own_staff_id)
    rows = [[button(s.name, OwnerNew(action="w", id=s.id).pack())] for s in offered]
    rows.append(menu_row(texts, locale, own_staff_id))
    await show(callback, texts(locale, "adm_wi_title"), InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(OwnerNew.filter(F.action == "w"))
async def walk_in(
    callback: CallbackQuery,
    callback_data: OwnerNew,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int | None = None,
) -> None:
    """Tap two of two: booked now with whoever is free (a staff member: with themselves), or
    told that nobody is."""
    owner = sender_id(callback)
    customer = await core.clients.walk_in(name=texts(locale, "adm_wi_customer"))
    try:
        booking = await core.bookings.walk_in(
            customer_id=customer.id,
            service_id=callback_data.id,
            actor=Actor.owner(owner),
            idempotency_key=f"walk-in:{callback.id}",
            staff_id=own_staff_id,
        )
    except SlotUnavailable:
        await callback.answer(texts(locale, "adm_wi_nobody"), show_alert=True)
        return
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    await callback.answer(texts(locale, "adm_nb_booked"))
    details = await core.bookings.get(booking.id)  # its notices were armed with it (durable)
    await _booked(callback, core, details, cache, texts, locale, clock, own_staff_id)
