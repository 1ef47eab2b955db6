"""Vacations and closures over several days (for one staff member or the whole business), and the
bookings already inside, each with one-tap "move" and "cancel and tell the customer"."""

from __future__ import annotations

from datetime import timedelta

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader, Closure
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import Actor, BusinessSettings, Clock
from tenant_bot.callbacks import OwnerBooking, Vacation
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu, parse_day
from tenant_bot.handlers.common import sender_id, show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import Notifier
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts
from tenant_bot.views import local_today

routes = Routes("admin_vacations")

MAX_LISTED = 30
_TICK = timedelta(microseconds=1)  # the closure ends at midnight: its last day is just before


@routes.callback_query(Vacation.filter(F.action == "new"))
async def who(
    callback: CallbackQuery, cache: CatalogueReader, texts: BotTexts, locale: str
) -> None:
    """Whose time is closed: everyone, or one staff member."""
    await callback.answer()
    rows = [[button(texts(locale, "adm_closure_everyone"), Vacation(action="w").pack())]]
    for member in await cache.all_staff():
        rows.append([button(member.name, Vacation(action="w", staff_id=member.id).pack())])
    rows.append(back_to_menu(texts, locale, "blocks"))
    await show(
        callback, texts(locale, "adm_closure_who"), InlineKeyboardMarkup(inline_keyboard=rows)
    )


@routes.callback_query(Vacation.filter(F.action == "w"))
async def ask_days(
    callback: CallbackQuery,
    callback_data: Vacation,
    state: FSMContext,
    texts: BotTexts,
    locale: str,
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.closure_days,
        prompt=texts(locale, "adm_closure_ask"),
        back=back_to_menu(texts, locale, "blocks"),
        data={"staff_id": callback_data.staff_id},
    )


@routes.message(OwnerInput.closure_days, F.text)
async def close_days(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """``01.02 14.02 vacation``: the days are closed, then the bookings inside are listed."""
    settings = await cache.settings()
    parts = (message.text or "").split(maxsplit=2)
    try:
        today = local_today(settings, clock)
        day_from = parse_day(parts[0], today=today)
        # both days are the nearest ones ahead: a range over New Year needs its year typed
        day_to = parse_day(parts[1], today=today) if len(parts) > 1 else day_from
        if day_to < day_from:
            raise ValueError(parts[1])
    except (ValueError, IndexError):
        await message.answer(texts(locale, "adm_closure_bad"))
        return
    staff_id = (await state.get_data()).get("staff_id") or None
    reason = parts[2].strip()[:500] if len(parts) > 2 else ""
    try:
        closure = await core.closures.close_days(day_from, day_to, staff_id=staff_id, reason=reason)
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await state.clear()
    await closure_screen(message, closure, cache, texts, locale, settings)


async def closure_screen(
    event: CallbackQuery | Message,
    closure: Closure,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    settings: BusinessSettings,
) -> None:
    block = closure.block
    zone = settings.zone
    first = block.starts_at.astimezone(zone).date()
    last = (block.ends_at.astimezone(zone) - _TICK).date()
    who_name = (
        await cache.staff_name(block.staff_id)
        if block.staff_id is not None
        else texts(locale, "adm_closure_everyone")
    )
    lines = []
    rows = []
    for details in closure.bookings[:MAX_LISTED]:
        when = texts.when(locale, details.booking.starts_at, zone)
        lines.append(f"• {when} · {details.service_name} · {details.customer_name}")
        rows.append(
            [
                button(
                    f"↪ {when} · {details.customer_name}"[:60],
                    OwnerBooking(booking_id=details.booking.id, action="m").pack(),
                ),
                button(
                    texts(locale, "adm_closure_cancel"),
                    Vacation(action="x", block_id=block.id, booking_id=details.booking.id).pack(),
                ),
            ]
        )
    rows.append(back_to_menu(texts, locale, "blocks"))
    text = texts(
        locale,
        "adm_closure",
        first=texts.day(locale, first),
        last=texts.day(locale, last),
        who=who_name,
        reason=block.reason,
        count=len(closure.bookings),
    )
    if lines:
        text += "\n\n" + "\n".join(lines)
    await show(event, text[:4000], InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Vacation.filter(F.action == "v"))
async def view(
    callback: CallbackQuery,
    callback_data: Vacation,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    closure = await core.closures.get(callback_data.block_id)
    await callback.answer()
    await closure_screen(callback, closure, cache, texts, locale, await cache.settings())


@routes.callback_query(Vacation.filter(F.action == "x"))
async def cancel_inside(
    callback: CallbackQuery,
    callback_data: Vacation,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
) -> None:
    """Cancel one booking inside the closure; its customer gets the closure's reason."""
    closure = await core.closures.get(callback_data.block_id)
    settings = await cache.settings()
    reason = closure.block.reason or texts(locale, "adm_closure_reason")
    owner = sender_id(callback)
    try:
        booking = await core.bookings.cancel(
            callback_data.booking_id, actor=Actor.owner(owner), reason=reason
        )
    except BookingError as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    details = await core.bookings.get(booking.id)
    await notifier.booking_cancelled(details, by="owner", actor_id=owner, settings=settings)
    await callback.answer(texts(locale, "adm_cancelled"))
    closure = await core.closures.get(callback_data.block_id)
    await closure_screen(callback, closure, cache, texts, locale, settings)
