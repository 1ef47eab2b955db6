"""CalendarReads: what calendar files need beyond the bookings themselves."""

from __future__ import annotations

from tenant_bot.booking.db import Database
from tenant_bot.booking.repositories import calendar as repo


class CalendarReads:
    """The ``SEQUENCE`` of bookings in calendar files: how many times each was moved."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def times_moved(self, booking_ids: list[int]) -> dict[int, int]:
        """Moves per booking id (0 for a booking never moved, or unknown)."""
        if not booking_ids:
            return {}
        async with self._db.connection() as conn:
            found = await repo.times_moved(conn, booking_ids)
        return {booking_id: found.get(booking_id, 0) for booking_id in booking_ids}
