"""The booking state machine and the read side of BookingService (mixed into it).

pending -> confirmed -> done | no_show; pending and confirmed -> cancelled (by customer or owner, with a
reason). Every change is written to ``booking_history`` in the same statement as the change.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import Forbidden, InvalidInput, InvalidTransition, NotFound, TooLate
from tenant_bot.booking.models import (
    ALLOWED_TRANSITIONS,
    Actor,
    Booking,
    BookingDetails,
    BookingStatus,
    Clock,
    HistoryEntry,
)
from tenant_bot.booking.repositories import bookings as repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.slots import to_utc


class TransitionsMixin:
    """Status changes and queries; expects ``_db`` and ``_clock`` from the class it is mixed into."""

    _db: Database
    _clock: Clock

    async def _locked(self, conn: asyncpg.Connection, booking_id: int, actor: Actor) -> Booking:
        found = await repo.lock_booking(conn, booking_id)
        if found is None:
            raise NotFound("no such booking", entity="booking", id=booking_id)
        booking, customer_telegram_id = found
        if actor.is_customer and actor.telegram_user_id != customer_telegram_id:
            raise Forbidden("this booking belongs to another customer", booking_id=booking_id)
        return booking

    @staticmethod
    def _require_active(booking: Booking) -> None:
        if not booking.status.active:
            raise InvalidTransition(
                f"the booking is {booking.status.value}", status=booking.status.value
            )

    async def cancel(self, booking_id: int, *, actor: Actor, reason: str | None = None) -> Booking:
        """Cancel an active booking; customers need ``cancel_notice_minutes`` before the start.

        Cancelling a cancelled booking returns it unchanged (a repeated tap is harmless). Afterwards
        the bot may offer the freed time to ``waitlist.candidates_for(booking)``.
        """
        if reason is not None and len(reason) > 500:
            raise InvalidInput("reason", "must be at most 500 characters")
        now = self._clock()
        async with self._db.transaction() as conn:
            booking = await self._locked(conn, booking_id, actor)
            if booking.status is BookingStatus.CANCELLED:
                return booking
            self._require_active(booking)
            if actor.is_customer:
                settings = await catalogue_repo.get_settings(conn)
                if booking.starts_at - now < timedelta(minutes=settings.cancel_notice_minutes):
                    raise TooLate("too late to cancel", minutes=settings.cancel_notice_minutes)
            return await repo.set_status(
                conn,
                booking,
                to=BookingStatus.CANCELLED,
                now=now,
                actor=actor.kind,
                actor_id=actor.telegram_user_id,
                reason=reason,
            )

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
            booking = await self._locked(conn, booking_id, actor)
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
            return await repo.set_status(
                conn,
                booking,
                to=to,
                now=now,
                actor=actor.kind,
                actor_id=actor.telegram_user_id,
                reason=reason,
            )

    async def confirm(self, booking_id: int, *, actor: Actor) -> Booking:
        """The owner confirms a pending booking."""
        return await self.transition(booking_id, BookingStatus.CONFIRMED, actor=actor)

    async def mark_done(self, booking_id: int, *, actor: Actor) -> Booking:
        """The customer came."""
        return await self.transition(booking_id, BookingStatus.DONE, actor=actor)

    async def mark_no_show(self, booking_id: int, *, actor: Actor) -> Booking:
        """The customer did not come."""
        return await self.transition(booking_id, BookingStatus.NO_SHOW, actor=actor)

    async def get(self, booking_id: int) -> BookingDetails:
        """One booking with names; raises :class:`NotFound`."""
        async with self._db.connection() as conn:
            found = await repo.get_details(conn, booking_id)
        if found is None:
            raise NotFound("no such booking", entity="booking", id=booking_id)
        return found

    async def for_customer(
        self, customer_id: int, *, include_past: bool = False
    ) -> list[BookingDetails]:
        """The customer's active bookings that have not ended (or, with ``include_past``, all)."""
        async with self._db.connection() as conn:
            if include_past:
                return await repo.list_details(conn, customer_id=customer_id)
            return await repo.list_details(
                conn, customer_id=customer_id, active_only=True, ends_after=self._clock()
            )

    async def for_day(self, day: date, *, staff_id: int | None = None) -> list[BookingDetails]:
        """Every booking starting on local ``day`` (the owner's day view), all statuses."""
        async with self._db.connection() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
            return await repo.list_details(
                conn,
                staff_id=staff_id,
                starts_from=to_utc(day, 0, zone),
                starts_before=to_utc(day, 1440, zone),
            )

    async def upcoming(self, *, until: datetime | None = None) -> list[BookingDetails]:
        """Active bookings from now until ``until`` (default: a week)."""
        now = self._clock()
        async with self._db.connection() as conn:
            return await repo.list_details(
                conn,
                active_only=True,
                starts_from=now,
                starts_before=until or now + timedelta(days=7),
            )

    async def history(self, booking_id: int) -> list[HistoryEntry]:
        """Every recorded change of the booking, oldest first."""
        async with self._db.connection() as conn:
            return await repo.history(conn, booking_id)
