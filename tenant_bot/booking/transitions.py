"""The booking state machine: :class:`BookingStateMachine`, which :class:`~.service.BookingService`
holds and hands its status changes to.

pending -> confirmed -> done | no_show; pending and confirmed -> cancelled (by customer or owner, with a
reason). Every change is written to ``booking_history`` in the same statement as the change, under
the booking's row lock (:func:`lock_booking`, which reschedule takes too).
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tenant_bot.booking.db import Database
from tenant_bot.booking.deposits import settle
from tenant_bot.booking.errors import Forbidden, InvalidInput, InvalidTransition, NotFound, TooLate
from tenant_bot.booking.models import (
    ALLOWED_TRANSITIONS,
    Actor,
    Booking,
    BookingStatus,
    Clock,
)
from tenant_bot.booking.repositories import bookings as repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo


async def lock_booking(conn: asyncpg.Connection, booking_id: int, actor: Actor) -> Booking:
    """The booking, locked for the rest of the transaction; :class:`NotFound`, or :class:`Forbidden`
    when a customer reaches for someone else's."""
    found = await repo.lock_booking(conn, booking_id)
    if found is None:
        raise NotFound("no such booking", entity="booking", id=booking_id)
    booking, customer_telegram_id = found
    if actor.is_customer and actor.telegram_user_id != customer_telegram_id:
        raise Forbidden("this booking belongs to another customer", booking_id=booking_id)
    return booking


def require_active(booking: Booking) -> None:
    """:class:`InvalidTransition` unless the booking is pending or confirmed."""
    if not booking.status.active:
        raise InvalidTransition(
            f"the booking is {booking.status.value}", status=booking.status.value
        )


class BookingStateMachine:
    """Moves bookings between statuses, one transaction each; errors are
    :class:`~.errors.BookingError`."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def cancel(self, booking_id: int, *, actor: Actor, reason: str | None = None) -> Booking:
        """Cancel an active booking; customers need ``cancel_notice_minutes`` before the start.

        Cancelling a cancelled booking returns it unchanged (a repeated tap is harmless). Afterwards
        the bot may offer the freed time to ``waitlist.candidates_for(booking)``.
        """
        if reason is not None and len(reason) > 500:
            raise InvalidInput("reason", "must be at most 500 characters")
        now = self._clock()
        async with self._db.transaction() as conn:
            booking = await lock_booking(conn, booking_id, actor)
            if booking.status is BookingStatus.CANCELLED:
                return booking
            require_active(booking)
            if actor.is_customer:
                settings = await catalogue_repo.get_settings(conn)
                if booking.starts_at - now < timedelta(minutes=settings.cancel_notice_minutes):
                    raise TooLate("too late to cancel", minutes=settings.cancel_notice_minutes)
            cancelled = await repo.set_status(
                conn,
                booking,
                to=BookingStatus.CANCELLED,
                now=now,
                actor=actor.kind,
                actor_id=actor.telegram_user_id,
                reason=reason,
            )
            return await settle(conn, cancelled, by=actor.kind, now=now)

    async def transition(
        self, booking_id: int, to: BookingStatus, *, actor: Actor, reason: str | None = None
    ) -> Booking:
        """Move a booking to ``to`` if the state machine allows it (owner and system only, except
        cancelling, which goes through :meth:`cancel` rules for customers)."""
        if to is BookingStatus.CANCELLED:
            return await self.cancel(booking_id, actor=actor, reason=reason)
        if actor.is_customer:
            raise Forbidden("only the owner can change a booking's status")
        now = self._clock()
        async with self._db.transaction() as conn:
            booking = await lock_booking(conn, booking_id, actor)
            if booking.status is to:
                return booking
            if to not in ALLOWED_TRANSITIONS[booking.status]:
                raise InvalidTransition(
                    f"a {booking.status.value} booking cannot become {to.value}",
                    status=booking.status.value,
                    to=to.value,
                )
            if to in (BookingStatus.DONE, BookingStatus.NO_SHOW) and now < booking.starts_at:
                raise InvalidTransition(
                    "the booking has not started yet", status=booking.status.value, to=to.value
                )
            changed = await repo.set_status(
                conn,
                booking,
                to=to,
                now=now,
                actor=actor.kind,
                actor_id=actor.telegram_user_id,
                reason=reason,
            )
            return await settle(conn, changed, by=actor.kind, now=now)
