"""The owner's booking card: confirm, cancel with a reason, done, no-show."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import F
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot import views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import Actor, BookingDetails, BookingStatus, Clock
from tenant_bot.calendar_files import send_booking_file
from tenant_bot.callbacks import Admin, OwnerBooking
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu
from tenant_bot.handlers.common import sender_id, show
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier, owner_card
from tenant_bot.payments import Payments, payment_line
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_booking")


async def attendance_lines(
    core: BookingCore, details: BookingDetails, texts: BotTexts, locale: str
) -> str:
    """Whether the customer said they will come, and their no-shows here (issue 19)."""
    lines = ""
    if details.booking.customer_confirmed_at is not None:
        lines += "\n" + texts(locale, "adm_customer_will_come")
    no_shows = await core.no_shows.count(details.booking.customer_id)
    if no_shows:
        lines += "\n" + texts(locale, "adm_no_shows", count=no_shows)
    return lines


async def render_card(
    event: CallbackQuery | Message,
    core: BookingCore,
    details: BookingDetails,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    clock: Clock,
) -> None:
    settings = await cache.settings()
    facts = views.booking_facts(texts, locale, details, settings)
    text = texts(locale, "adm_booking_card", **facts, reason=details.booking.cancel_reason or "")
    text += await attendance_lines(core, details, texts, locale)
    text += payment_line(texts, locale, details.booking)  # deposits: paid / unpaid / refund due
    card = owner_card(texts, locale, details, now=clock())
    markup = InlineKeyboardMarkup(
        inline_keyboard=[*card.inline_keyboard, back_to_menu(texts, locale, "menu")]
    )
    await show(event, text, markup)


@routes.callback_query(OwnerBooking.filter(F.action == "v"))
async def view(
    callback: CallbackQuery,
    callback_data: OwnerBooking,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    clock: Clock,
) -> None:
    details = await core.bookings.get(callback_data.booking_id)
    await callback.answer()
    await render_card(callback, core, details, cache, texts, locale, clock)


@routes.callback_query(OwnerBooking.filter(F.action.in_({"ok", "d", "n"})))
async def change_status(
    callback: CallbackQuery,
    callback_data: OwnerBooking,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
    clock: Clock,
) -> None:
    """Confirm (the customer is told), or mark done / no-show after the start."""
    actor = Actor.owner(callback.from_user.id)
    target = {"ok": BookingStatus.CONFIRMED, "d": BookingStatus.DONE, "n": BookingStatus.NO_SHOW}[
        callback_data.action
    ]
    try:
        await core.bookings.transition(callback_data.booking_id, target, actor=actor)
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    await callback.answer(texts(locale, f"adm_done_{callback_data.action}"))
    details = await core.bookings.get(callback_data.booking_id)
    if target is BookingStatus.CONFIRMED:
        await notifier.booking_confirmed(details, settings=await cache.settings())
        await send_booking_file(notifier, core, details, await cache.settings())
    await render_card(callback, core, details, cache, texts, locale, clock)


@routes.callback_query(OwnerBooking.filter(F.action == "x"))
async def ask_reason(
    callback: CallbackQuery,
    callback_data: OwnerBooking,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    details = await core.bookings.get(callback_data.booking_id)
    if not details.booking.status.active:
        await callback.answer()
        await show(
            callback,
            texts(locale, "booking_gone"),
            InlineKeyboardMarkup(inline_keyboard=[back_to_menu(texts, locale)]),
        )
        return
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.cancel_reason,
        prompt=texts(locale, "adm_ask_reason"),
        back=back_to_menu(texts, locale),
        data={"booking_id": details.booking.id},
    )


@routes.message(OwnerInput.cancel_reason, F.text.startswith("/"))
async def command_leaves_the_step(message: Message, state: FSMContext) -> None:
    """A command sent instead of the reason (/admin, /my...) is not the reason: the step ends,
    nothing is cancelled, and the command is handled as ever."""
    await state.clear()
    raise SkipHandler


@routes.message(OwnerInput.cancel_reason, F.text, ~F.text.startswith("/"))
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
) -> None:
    """Cancel; the customer gets the reason, the waitlist gets the freed time, a paid deposit is
    owed back (the owners are told what to refund where)."""
    details = await cancel_typed(
        message, state, core=core, cache=cache, notifier=notifier, texts=texts, locale=locale
    )
    if details is not None:
        await render_card(message, core, details, cache, texts, locale, clock)
        await payments.refund_due_notice(details)


async def cancel_typed(
    message: Message,
    state: FSMContext,
    *,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
    allowed: Callable[[int], Awaitable[object]] | None = None,
) -> BookingDetails | None:
    """The booking the reason was asked for (the state's ``booking_id``), cancelled with the typed
    reason by :func:`cancel_and_tell` and said so; None after saying why not (``allowed`` may
    refuse the booking with a :class:`BookingError`: a staff member's, not their own)."""
    booking_id = (await state.get_data())["booking_id"]
    await state.clear()
    try:
        if allowed is not None:
            await allowed(booking_id)
        details = await cancel_and_tell(
            core,
            cache,
            notifier,
            booking_id,
            actor_id=sender_id(message),
            reason=typed_reason(message.text),
        )
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return None
    await message.answer(texts(locale, "adm_cancelled"))
    return details


def typed_reason(text: str | None) -> str | None:
    """A typed cancellation reason (``-`` for none), at most 500 characters."""
    reason = (text or "").strip()
    return None if reason in ("", "-") else reason[:500]


async def cancel_and_tell(
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    booking_id: int,
    *,
    actor_id: int,
    reason: str | None,
) -> BookingDetails:
    """Cancel on the owner's rules (a staff member cancels their own bookings as the owner does):
    the customer is told the reason, the owners but the actor are told, the waitlist is offered
    the freed time. Raises the core's :class:`BookingError`."""
    booking = await core.bookings.cancel(booking_id, actor=Actor.owner(actor_id), reason=reason)
    settings = await cache.settings()
    details = await core.bookings.get(booking.id)
    await notifier.booking_cancelled(details, by="owner", actor_id=actor_id, settings=settings)
    await notifier.offer_freed_time(booking, settings=settings)
    return details


__all__ = ["Admin", "routes"]
