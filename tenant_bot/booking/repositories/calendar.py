"""SQL for calendar files."""

from __future__ import annotations

import asyncpg


async def times_moved(conn: asyncpg.Connection, booking_ids: list[int]) -> dict[int, int]:
    """How many times each booking was moved to another time (bookings never moved: absent)."""
    rows = await conn.fetch(
        """
        SELECT booking_id, count(*) AS n
        FROM booking_history
        WHERE booking_id = ANY ($1::bigint[])
          AND from_starts_at IS NOT NULL AND to_starts_at IS NOT NULL
          AND from_starts_at <> to_starts_at
        GROUP BY booking_id
        """,
        booking_ids,
    )
    return {r["booking_id"]: r["n"] for r in rows}
