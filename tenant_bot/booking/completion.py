"""CompletionService: bookings whose end has passed and await the owner's "came / did not come"."""

from __future__ import annotations

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import BookingDetails, Clock, utc_now
from tenant_bot.booking.repositories import bookings as bookings_repo
from tenant_bot.booking.repositories import reminders as repo


class CompletionService:
    """Lists and hands out ended bookings for the owner to mark done or no-show.

    The owner's answer goes through ``core.bookings.mark_done`` / ``mark_no_show``.
    """

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def awaiting(self, *, limit: int = 100) -> list[BookingDetails]:
        """Confirmed bookings that have ended and are not yet marked (the owner's to-do list)."""
        async with self._db.connection() as conn:
            return await bookings_repo.list_details(
                conn, status="confirmed", ends_before=self._clock(), limit=limit
            )

    async def claim_prompts(self, *, limit: int = 50) -> list[BookingDetails]:
        """Ended confirmed bookings never put to the owner, marked as prompted in the same statement:
        several bot processes polling this each get different bookings, and each booking once."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "must be 1-1000")
        async with self._db.transaction() as conn:
            return await repo.claim_completion_prompts(conn, now=self._clock(), limit=limit)
