"""CompletionService: bookings whose end has passed and await the owner's "came / did not come".

A card is claimed once (the booking is marked prompted in the claiming statement). A card Telegram
could not take for a passing reason goes back with the time of its next attempt (:meth:`retry_later`);
one that can never be delivered keeps its mark and records why (:meth:`mark_failed`) — the booking
stays on the owner's to-do list (:meth:`awaiting`) either way.
"""

from __future__ import annotations

from datetime import datetime

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import BookingDetails, Clock, CompletionPrompt, utc_now
from tenant_bot.booking.repositories import bookings as bookings_repo
from tenant_bot.booking.repositories import reminders as repo

ERROR_MAX_CHARS = 500


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
        return [prompt.details for prompt in await self.claim_cards(limit=limit)]

    async def claim_cards(self, *, limit: int = 50) -> list[CompletionPrompt]:
        """As :meth:`claim_prompts`, with each card's attempt number (for the sender's backoff)."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "must be 1-1000")
        async with self._db.transaction() as conn:
            claimed = await repo.claim_completion_prompts(conn, now=self._clock(), limit=limit)
        return [CompletionPrompt(details, attempts) for details, attempts in claimed]

    async def retry_later(
        self, booking_id: int, *, attempts: int, retry_at: datetime, error: str
    ) -> bool:
        """Put a claimed card back, to be claimed again from ``retry_at``."""
        async with self._db.connection() as conn:
            return await repo.retry_completion_prompt(
                conn,
                booking_id=booking_id,
                attempts=attempts,
                retry_at=retry_at,
                error=error[:ERROR_MAX_CHARS],
            )

    async def mark_failed(self, booking_id: int, *, attempts: int, error: str) -> bool:
        """Record why a claimed card can never be delivered; it is not claimed again."""
        async with self._db.connection() as conn:
            return await repo.fail_completion_prompt(
                conn, booking_id=booking_id, attempts=attempts, error=error[:ERROR_MAX_CHARS]
            )
