"""The customer's booking flow up to the times of a day: service -> staff -> day (-> waitlist).

The draft lives in the FSM (Redis), so a restart mid-conversation continues where it was; the rest of
the flow (time, name, phone, confirm) is in :mod:`tenant_bot.handlers.checkout`.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiogram import F
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from kit.routing import Routes
from tenant_bot import keyboards, views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import (
    CustomerBlocked,
    NotFound,
)
from tenant_bot.booking.models import Clock, Service, Staff
from tenant_bot.callbacks import (
    Back,
    ClosedDay,
    Menu,
    Month,
    PickDay,
    PickService,
    PickStaff,
    Waitlist,
    day_of,
)
from tenant_bot.handlers.common import sender_id, show
from tenant_bot.handlers.day_and_time import show_calendar
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.outreach_views import average
from tenant_bot.states import BookingFlow
from tenant_bot.texts import BotTexts

routes = Routes("booking")


async def _services_screen(
    event: CallbackQuery | Message, cache: CatalogueReader, texts: BotTexts, locale: str
) -> None:
    services = await cache.services()
    if not services:
        await show(
            event, texts(locale, "no_services"), keyboards.main_menu(texts, locale, is_owner=False)
        )
        return
    await show(event, texts(locale, "pick_service"), keyboards.services(texts, locale, services))


async def _staff_screen(
    event: CallbackQuery,
    service: Service,
    staff: list[Staff],
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    ratings = (await core.reviews.ratings()).staff
    labels = {
        member.id: texts(
            locale,
            "staff_button_rated",
            name=member.name,
            average=average(locale, ratings[member.id].average),
            count=ratings[member.id].count,
        )
        for member in staff
        if member.id in ratings
    }
    await show(
        event,
        texts(locale, "pick_staff", service=service.name),
        keyboards.staff(texts, locale, staff, labels),
    )


@routes.message(Command("book"))
@routes.callback_query(Menu.filter(F.action == "book"))
async def start_booking(
    event: Message | CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """A new draft (a fresh idempotency key) and the list of services; a returning customer's
    name and phone are copied into the draft, so later steps need not ask the database again."""
    if isinstance(event, CallbackQuery):
        await event.answer()
    if await begin_draft(event, state, core, cache, texts, locale):
        await _services_screen(event, cache, texts, locale)


async def begin_draft(
    event: Message | CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> bool:
    """Start a draft (also for a booking link, :mod:`tenant_bot.handlers.deep_link`); False,
    with the reason shown, when the customer may not book."""
    draft: dict[str, Any] = {"draft": secrets.token_hex(6)}
    customer = await core.customers.by_telegram_id(sender_id(event))
    if customer is not None:
        try:  # the owner's no-show rule, said before the customer picks anything
            await core.no_shows.check_may_book(customer.id, settings=await cache.settings())
        except CustomerBlocked as exc:
            await state.clear()
            await show(
                event,
                error_text(texts, locale, exc),
                keyboards.main_menu(texts, locale, is_owner=False),
            )
            return False
    if customer is not None and customer.name and customer.phone:
        draft.update(customer_id=customer.id, name=customer.name, phone=customer.phone)
    await state.set_state(BookingFlow.service)
    await state.set_data(draft)
    return True


@routes.callback_query(PickService.filter(), BookingFlow.service)
async def pick_service(
    callback: CallbackQuery,
    callback_data: PickService,
    state: FSMContext,
    cache: CatalogueReader,
    core: BookingCore,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    service = await cache.service(callback_data.service_id)
    staff = await cache.staff_for(service.id)
    await callback.answer()
    # a staff member's booking link keeps to them; one staff member is who the customer sees,
    # not "anyone available"
    via = (await state.get_data()).get("via_staff")
    if via in {m.id for m in staff}:
        staff = [m for m in staff if m.id == via]
    only = staff[0].id if len(staff) == 1 else 0
    await state.update_data(service_id=service.id, staff_id=only, offset=0)
    if len(staff) > 1:
        await state.set_state(BookingFlow.staff)
        await _staff_screen(callback, service, staff, core, texts, locale)
        return
    await _calendar(callback, state, core, cache, texts, clock, locale)


@routes.callback_query(PickStaff.filter(), BookingFlow.staff)
async def pick_staff(
    callback: CallbackQuery,
    callback_data: PickStaff,
    state: FSMContext,
    cache: CatalogueReader,
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
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    data = await state.get_data()
    staff = await cache.staff_for(data["service_id"])
    back_step = "staff" if len(staff) > 1 else "service"
    await show_calendar(
        event,
        data,
        core=core,
        cache=cache,
        texts=texts,
        clock=clock,
        locale=locale,
        purpose="b",
        back=button(texts(locale, "btn_back"), Back(step=back_step).pack()),
        state=state,
        day_state=BookingFlow.day,
    )


@routes.callback_query(Month.filter(F.purpose == "b"), BookingFlow.day)
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


async def show_times(
    event: CallbackQuery | Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
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
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    day_of(callback_data.day)  # a malformed date is a stale button
    await callback.answer()
    await state.update_data(day=callback_data.day)
    await show_times(callback, state, core, cache, texts, locale)


@routes.callback_query(ClosedDay.filter())
async def closed_day(
    callback: CallbackQuery,
    callback_data: ClosedDay,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """A closed day in a calendar (booking or reschedule) says so (today: that no time is left);
    the calendar stays."""
    day = day_of(callback_data.day)
    today = views.local_today(await cache.settings(), clock)
    key = "day_over" if day == today else "day_closed"
    await callback.answer(texts(locale, key, day=texts.day(locale, day)), show_alert=True)


@routes.callback_query(Back.filter(), StateFilter(BookingFlow))
async def back(
    callback: CallbackQuery,
    callback_data: Back,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
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
        await _staff_screen(
            callback, service, await cache.staff_for(service.id), core, texts, locale
        )
    elif step == "time" and "day" in data:
        await show_times(callback, state, core, cache, texts, locale)
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
