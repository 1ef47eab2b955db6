"""A staff member's desk (/staff): their own day, and booking a caller or a walk-in on their
own schedule.

Only a staff member with a Telegram account (``staff.telegram_user_id``, the owner's team screen
links it) reaches these handlers: the router filter finds the sender among the active staff and
passes the member's id as ``own_staff_id``. The booking steps are the owner's own
(:mod:`tenant_bot.handlers.admin.owner_booking`), which then keep the staff pinned to that member;
the owner's other screens (settings, services, export) stay behind the owner-only router, so a
staff member tapping one is told the button is outdated, as is a customer tapping a staff button.

"My day" is the owner's day screen (:func:`tenant_bot.views.schedule_screen`) over the member's
bookings only, with ◀ ▶ and the owner's date picker; each booking opens a card with the owner's
card rules cut to what a staff member may do with their own bookings: came / did not come once
started, and cancel with a reason (the customer is told, as when the owner cancels). The card shows
the customer's phone by its last four digits only: enough to tell callers apart, not a copy of the
owner's client book. A booking of another member (a forged or outdated button, or one the owner
moved to someone else meanwhile) is "not found" to them: the stale button answer, nothing changed.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, timedelta
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User

from kit.routing import Routes
from tenant_bot import views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError, NotFound
from tenant_bot.booking.models import Actor, BookingDetails, BookingStatus, Clock
from tenant_bot.callbacks import (
    Admin,
    Desk,
    DeskBooking,
    Menu,
    Month,
    OwnerNew,
    PickDay,
    day_code,
    day_of,
)
from tenant_bot.commands import remove_staff_menu, set_staff_menu
from tenant_bot.handlers.admin.booking_card import cancel_typed, command_leaves_the_step
from tenant_bot.handlers.admin.common import ask_for_input
from tenant_bot.handlers.admin.menu import owner_calendar
from tenant_bot.handlers.common import sender_id, show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier, owner_card
from tenant_bot.payments import Payments, payment_line
from tenant_bot.staff_invites import PAYLOAD, StaffInvites
from tenant_bot.states import DeskInput, OwnerBookingFlow
from tenant_bot.texts import BotTexts

log = logging.getLogger(__name__)

routes = Routes("staff_desk")
join_routes = Routes("staff_join")


@join_routes.message(CommandStart(deep_link=True, magic=F.args.regexp(PAYLOAD)))
async def join(
    message: Message,
    command: CommandObject,
    bot: Bot,
    core: BookingCore,
    cache: CatalogueReader,
    invites: StaffInvites,
    texts: BotTexts,
    locale: str,
    is_owner: bool,
) -> None:
    """The owner's one-time invitation opened: the sender becomes that staff member's account
    (and no other member's: one account is one member), with /staff in their command menu; an
    account the member had before loses the desk and its menu."""
    staff_id = await invites.take(command.args or "")
    user = message.from_user
    if staff_id is None or user is None:
        await message.answer(texts(locale, "desk_invite_spent"))
        return
    before = {m.id: m.telegram_user_id for m in await cache.all_staff()}
    try:
        member = await core.catalogue.update_staff(staff_id, telegram_user_id=user.id)
    except NotFound:  # removed since the owner made the link
        await message.answer(texts(locale, "desk_invite_spent"))
        return
    for other, account in before.items():
        if account == user.id and other != member.id:
            await core.catalogue.update_staff(other, telegram_user_id=None)
    previous = before.get(member.id)
    if previous is not None and previous != user.id:
        await remove_staff_menu(bot, chat_id=previous)
    if not is_owner and member.active:  # an owner keeps the owner's menu (/admin holds it all)
        await set_staff_menu(bot, texts=texts, chat_id=user.id, locale=locale)
    await message.answer(texts(locale, "desk_joined", name=member.name))


def _desk_update(event: object, raw_state: str | None) -> bool:
    """Whether the update can be for the desk at all: /staff, a desk or owner-booking button, the
    desk's calendar, or a step of the booking flow or of a typed reason. Other updates (every
    customer's) cost no staff lookup, which would ask the database whether the catalogue is
    current."""
    if raw_state is not None and raw_state.startswith(_DESK_STATES):
        return True
    if isinstance(event, Message):
        return (event.text or "").startswith("/staff")
    if isinstance(event, CallbackQuery):
        data = event.data or ""
        return data.startswith(_DESK_PREFIXES) or (
            data.startswith(_CALENDAR_PREFIXES) and data.endswith(f":{PURPOSE}")
        )
    return False


PURPOSE = "s"  # the desk's calendar: PickDay / Month of this purpose
_DESK_STATES = (OwnerBookingFlow.__name__, DeskInput.__name__)
_DESK_PREFIXES = tuple(f"{factory.__prefix__}:" for factory in (Desk, DeskBooking, Admin, OwnerNew))
_CALENDAR_PREFIXES = (f"{PickDay.__prefix__}:", f"{Month.__prefix__}:")


async def staff_member(
    event: object,
    is_owner: bool,
    cache: CatalogueReader,
    event_from_user: User | None = None,
    raw_state: str | None = None,
) -> bool | dict[str, Any]:
    """Router filter: the sender is an active staff member (not an owner: the owner's menu
    already holds every action); passes ``own_staff_id``."""
    if is_owner or event_from_user is None or not _desk_update(event, raw_state):
        return False
    for member in await cache.all_staff():
        if member.active and member.telegram_user_id == event_from_user.id:
            return {"own_staff_id": member.id}
    return False


@routes.message(Command("staff"))
@routes.callback_query(Desk.filter(F.action == "menu"))
async def desk(
    event: Message | CallbackQuery,
    state: FSMContext,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    own_staff_id: int,
) -> None:
    """My day, new booking, walk-in now, and the way home."""
    if isinstance(event, CallbackQuery):
        await event.answer()
    await state.clear()
    rows = [
        [button(texts(locale, "desk_btn_day"), Desk(action="day").pack())],
        [
            button(texts(locale, "adm_btn_new_booking"), Admin(section="nb").pack()),
            button(texts(locale, "adm_btn_walk_in"), Admin(section="wi").pack()),
        ],
        [button(texts(locale, "btn_home"), Menu(action="home").pack())],
    ]
    name = await cache.staff_name(own_staff_id)
    await show(
        event, texts(locale, "desk_menu", name=name), InlineKeyboardMarkup(inline_keyboard=rows)
    )


def _desk_button(texts: BotTexts, locale: str) -> InlineKeyboardButton:
    return button(texts(locale, "btn_back"), Desk(action="menu").pack())


def _day_button(texts: BotTexts, locale: str, day: date | None = None) -> InlineKeyboardButton:
    code = day_code(day) if day is not None else 0
    return button(texts(locale, "btn_back"), Desk(action="day", day=code).pack())


def _card_data(booking_id: int, action: str = "v") -> str:
    return DeskBooking(booking_id=booking_id, action=action).pack()


STAFF_ACTIONS = frozenset({"x", "d", "n"})  # cancel, came, did not come: no confirm, no move


async def show_desk_day(
    event: CallbackQuery | Message,
    day: date,
    *,
    own_staff_id: int,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """The member's bookings of ``day`` (the owner's day screen, theirs only), ◀ ▶ by day, a
    date, and the way back to the desk."""
    nav = [
        button("◀", Desk(action="day", day=day_code(day - timedelta(days=1))).pack()),
        button(texts(locale, "desk_btn_pick"), Desk(action="pick").pack()),
        button("▶", Desk(action="day", day=day_code(day + timedelta(days=1))).pack()),
    ]
    text, markup = views.schedule_screen(
        texts,
        locale,
        await core.bookings.day_schedule(day, staff_id=own_staff_id),
        await cache.settings(),
        open_card=_card_data,
        line_key="desk_day_line",
        bottom=[nav, [_desk_button(texts, locale)]],
    )
    await show(event, text, markup)


@routes.callback_query(Desk.filter(F.action == "day"))
@routes.callback_query(PickDay.filter(F.purpose == PURPOSE))
async def my_day(
    callback: CallbackQuery,
    callback_data: Desk | PickDay,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int,
) -> None:
    """Today, the day of the tapped ◀ ▶ or of the date picked (``day`` 0: today)."""
    day = (
        day_of(callback_data.day)
        if callback_data.day
        else views.local_today(await cache.settings(), clock)
    )
    await callback.answer()
    await state.clear()
    await show_desk_day(
        callback, day, own_staff_id=own_staff_id, core=core, cache=cache, texts=texts, locale=locale
    )


pick_day = owner_calendar(
    routes,
    Desk.filter(F.action == "pick"),
    purpose=PURPOSE,
    title_key="adm_pick_day_title",
    back=_day_button,
)


async def own_booking(core: BookingCore, booking_id: int, *, own_staff_id: int) -> BookingDetails:
    """The booking if it is the member's own; another member's is "not found" to them (the stale
    button answer, logged at info by the error reporter), so nothing about it shows."""
    details = await core.bookings.get(booking_id)
    if details.booking.staff_id != own_staff_id:
        log.info(
            "staff desk refused another member's booking",
            extra={"staff_id": own_staff_id, "booking_id": booking_id},
        )
        raise NotFound("no such booking", entity="booking", id=booking_id)
    return details


async def render_desk_card(
    event: CallbackQuery | Message,
    details: BookingDetails,
    *,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    clock: Clock,
) -> None:
    """The member's card of their booking: the owner's card rules, the staff's actions."""
    settings = await cache.settings()
    facts = views.facts(texts, locale, details, settings)
    booking = details.booking
    text = texts(
        locale,
        "desk_booking_card",
        service=facts.service,
        when=facts.when,
        price=facts.price,
        customer=facts.customer,
        phone=views.phone_ending(facts.phone),
        status=facts.status,
        reason=booking.cancel_reason or "",
    )
    if booking.customer_confirmed_at is not None and booking.status.active:
        text += "\n" + texts(locale, "adm_customer_will_come")
    text += payment_line(texts, locale, booking)  # a paid deposit counts at the till
    card = owner_card(texts, locale, details, now=clock(), actions=STAFF_ACTIONS, data=_card_data)
    day = booking.starts_at.astimezone(settings.zone).date()
    markup = InlineKeyboardMarkup(
        inline_keyboard=[*card.inline_keyboard, [_day_button(texts, locale, day)]]
    )
    await show(event, text, markup)


@routes.callback_query(DeskBooking.filter(F.action == "v"))
async def card(
    callback: CallbackQuery,
    callback_data: DeskBooking,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int,
) -> None:
    details = await own_booking(core, callback_data.booking_id, own_staff_id=own_staff_id)
    await callback.answer()
    await render_desk_card(callback, details, cache=cache, texts=texts, locale=locale, clock=clock)


@routes.callback_query(DeskBooking.filter(F.action.in_({"d", "n"})))
async def outcome(
    callback: CallbackQuery,
    callback_data: DeskBooking,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    own_staff_id: int,
) -> None:
    """Came / did not come, once the booking has started (the core refuses before)."""
    await own_booking(core, callback_data.booking_id, own_staff_id=own_staff_id)
    target = BookingStatus.DONE if callback_data.action == "d" else BookingStatus.NO_SHOW
    try:
        await core.bookings.transition(
            callback_data.booking_id, target, actor=Actor.owner(sender_id(callback))
        )
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    await callback.answer(texts(locale, f"adm_done_{callback_data.action}"))
    details = await core.bookings.get(callback_data.booking_id)
    await render_desk_card(callback, details, cache=cache, texts=texts, locale=locale, clock=clock)


@routes.callback_query(DeskBooking.filter(F.action == "x"))
async def ask_reason(
    callback: CallbackQuery,
    callback_data: DeskBooking,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
    own_staff_id: int,
) -> None:
    details = await own_booking(core, callback_data.booking_id, own_staff_id=own_staff_id)
    if not details.booking.status.active:
        await callback.answer(texts(locale, "booking_gone"), show_alert=True)
        return
    await ask_for_input(
        callback,
        state,
        input_state=DeskInput.cancel_reason,
        prompt=texts(locale, "adm_ask_reason"),
        back=[button(texts(locale, "btn_back"), _card_data(details.booking.id))],
        data={"booking_id": details.booking.id},
    )


routes.message(DeskInput.cancel_reason, F.text.startswith("/"))(command_leaves_the_step)


@routes.message(DeskInput.cancel_reason, F.text, ~F.text.startswith("/"))
async def cancel_with_reason(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    payments: Payments,
    texts: BotTexts,
    locale: str,
    clock: Clock,
    own_staff_id: int,
) -> None:
    """Cancel as the owner does: the customer gets the reason, the owners are told, the waitlist
    gets the freed time, a paid deposit is owed back. Still the member's own booking only (the
    owner may have moved it to someone else while the reason was typed)."""
    details = await cancel_typed(
        message,
        state,
        core=core,
        cache=cache,
        notifier=notifier,
        texts=texts,
        locale=locale,
        allowed=functools.partial(own_booking, core, own_staff_id=own_staff_id),
    )
    if details is not None:
        await render_desk_card(
            message, details, cache=cache, texts=texts, locale=locale, clock=clock
        )
        await payments.refund_due_notice(details)


def staff_router() -> Router:
    """A fresh staff router: the desk, and the owner's booking steps on the member's schedule."""
    from tenant_bot.handlers.admin import owner_booking

    router = Router(name="staff")
    router.message.filter(staff_member)
    router.callback_query.filter(staff_member)
    router.include_routers(routes.build(), owner_booking.routes.build())
    return router
