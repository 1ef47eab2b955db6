"""The customer's answer to a reminder: "I'll come" (its "Cancel" and "Reschedule" buttons are the
usual :mod:`~tenant_bot.handlers.my_bookings` flows).

A stale or forged button (someone else's booking, one cancelled or released, a malformed id) is
answered quietly with a short note and changes nothing.
"""

from __future__ import annotations

from aiogram.types import CallbackQuery

from kit.routing import Routes
from tenant_bot import views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError, StorageUnavailable
from tenant_bot.booking.models import Actor
from tenant_bot.callbacks import Attend
from tenant_bot.handlers.common import show
from tenant_bot.middlewares.errors import error_text
from tenant_bot.notifications import reminder_buttons
from tenant_bot.texts import BotTexts

routes = Routes("attendance")


@routes.callback_query(Attend.filter())
async def attend(
    callback: CallbackQuery,
    callback_data: Attend,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """Record "I'll come" (a repeated tap is harmless) and show the booking, with "Cancel" and
    "Reschedule" still there should plans change."""
    actor = Actor.customer(callback.from_user.id)
    try:
        booking = await core.attendance.confirm(callback_data.booking_id, actor=actor)
    except StorageUnavailable as exc:
        await callback.answer(error_text(texts, locale, exc), show_alert=True)
        return
    except BookingError:  # not theirs, gone, released: nothing to confirm
        await callback.answer(texts(locale, "booking_gone"))
        return
    await callback.answer(texts(locale, "attend_thanks"))
    details = await core.bookings.get(booking.id)
    facts = views.booking_facts(texts, locale, details, await cache.settings())
    await show(
        callback,
        texts(locale, "attend_confirmed", **facts),
        reminder_buttons(texts, locale, booking.id, attend=False),
    )
