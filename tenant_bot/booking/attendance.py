"""AttendanceService: the customer's answer to a reminder, and releasing bookings nobody confirmed.

A reminder asks "are you coming?". The customer's "I'll come" is recorded once on the booking
(``customer_confirmed_at``; a repeated tap changes nothing) and shows in the owner's day view. It is
not the owner's confirmation (``confirmed`` status): a pending booking can be confirmed by its
customer and still await the owner.

The owner may choose to release unconfirmed bookings ``release_unconfirmed_hours`` before their
start: a booking whose customer was reminded before that time and has not answered is cancelled by
the system, its unsent reminders dropped, and the bot tells the customer and offers the time to the
waitlist. The background loop calls :meth:`release_due` on each pass (any number of processes: rows
are claimed with ``SKIP LOCKED``, so each booking is released once); a customer tapping "I'll come"
at that very moment either wins (the booking stays) or is told the booking is gone.
"""

from __future__ import annotations

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import Actor, Booking, BookingDetails, Clock, utc_now
from tenant_bot.booking.repositories import attendance as repo
from tenant_bot.booking.transitions import lock_booking, require_active


class AttendanceService:
    """Records customers' "I'll come" and releases unconfirmed bookings when the owner wants."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def confirm(self, booking_id: int, *, actor: Actor) -> Booking:
        """The customer will come. Idempotent: a repeat returns the booking with the first time.

        Raises :class:`~.errors.NotFound`, :class:`~.errors.Forbidden` (someone else's booking) or
        :class:`~.errors.InvalidTransition` (cancelled, released, or over)."""
        async with self._db.transaction() as conn:
            booking = await lock_booking(conn, booking_id, actor)
            require_active(booking)
            if booking.customer_confirmed_at is not None:
                return booking
            return await repo.confirm_attendance(
                conn, booking_id=booking_id, now=self._clock(), actor_id=actor.telegram_user_id
            )

    async def release_due(self, *, limit: int = 50) -> list[BookingDetails]:
        """Release the unconfirmed bookings whose release time has come (none while the owner's
        ``release_unconfirmed_hours`` is off); the caller tells their customers and the waitlist."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "must be 1-1000")
        async with self._db.transaction() as conn:
            return await repo.release_unconfirmed(conn, now=self._clock(), limit=limit)
