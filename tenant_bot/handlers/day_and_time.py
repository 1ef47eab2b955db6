"""Picking a day, then a free time: the step that booking, a customer's reschedule and the
owner's move share.

The flows differ only in their callback purpose, their back button and what happens after a time
is tapped; the calendar, the "day is full" alert and the moved booking's draft live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, Message

from tenant_bot import views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import Actor, Booking, BookingDetails, BusinessSettings, Clock
from tenant_bot.callbacks import PickTime
from tenant_bot.handlers.common import show
from tenant_bot.notifications import Notifier
from tenant_bot.texts import BotTexts


def move_draft(booking: Booking) -> dict[str, int]:
    """The FSM data of a reschedule: which booking, for which service and staff, month offset 0."""
    return {
        "booking_id": booking.id,
        "service_id": booking.service_id,
        "staff_id": booking.staff_id,
        "offset": 0,
    }


async def show_calendar(
    event: CallbackQuery | Message,
    data: Mapping[str, Any],
    *,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    purpose: str,
    back: InlineKeyboardButton,
    title_key: str = "pick_day",
    state: FSMContext | None = None,
    day_state: State | None = None,
    notice: bool = True,
) -> None:
    """The month of ``data``'s offset with the days that have free time for its service (and
    staff, 0 meaning anyone); ``state`` enters ``day_state`` once the screen is built.
    ``notice=False`` for the owner's move: the owner's rules, no minimum notice."""
    text, markup = await views.calendar_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        clock=clock,
        service_id=data["service_id"],
        staff_id=data.get("staff_id") or None,
        offset=data.get("offset", 0),
        purpose=purpose,
        back=back,
        title_key=title_key,
        notice=notice,
    )
    if state is not None and day_state is not None:
        await state.set_state(day_state)
    await show(event, text, markup)


async def free_times_or_alert(
    callback: CallbackQuery,
    data: Mapping[str, Any],
    *,
    day: date,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
    notice: bool = True,
) -> views.Screen | None:
    """The free times of ``day`` for a reschedule, or None after a "day is full" alert (a moved
    booking has nothing to wait for, so no waitlist is offered); ``notice`` as in
    :func:`show_calendar`."""
    screen, has_times = await views.times_screen(
        core=core,
        cache=cache,
        texts=texts,
        locale=locale,
        service_id=data["service_id"],
        staff_id=data["staff_id"],
        day=day,
        notice=notice,
    )
    if not has_times:
        await callback.answer(
            texts(locale, "day_full", day=texts.day(locale, day)), show_alert=True
        )
        return None
    return screen


async def reschedule_to(
    core: BookingCore, booking_id: int, picked: PickTime, *, actor: Actor
) -> Booking:
    """Move the booking to the tapped time and staff member (the core checks the rules)."""
    return await core.bookings.reschedule(
        booking_id,
        new_start=datetime.fromtimestamp(picked.ts, UTC),
        new_staff_id=picked.staff_id,
        actor=actor,
    )


async def tell_rescheduled(
    notifier: Notifier,
    details: BookingDetails,
    *,
    before: Booking,
    by: str,
    settings: BusinessSettings,
    actor_id: int | None = None,
) -> None:
    """Tell the other side about the new time, and the waitlist about the freed old one."""
    await notifier.booking_rescheduled(
        details, old_start=before.starts_at, by=by, actor_id=actor_id, settings=settings
    )
    await notifier.offer_freed_time(before, settings=settings)
