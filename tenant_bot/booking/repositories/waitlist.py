"""SQL for the waitlist."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from tenant_bot.booking.models import WaitlistEntry

_SELECT = """
    SELECT w.*, c.telegram_user_id AS customer_telegram_id, c.locale AS customer_locale
    FROM waitlist w JOIN customers c ON c.id = w.customer_id
"""


def entry_from_row(row: asyncpg.Record) -> WaitlistEntry:
    return WaitlistEntry(
        id=row["id"],
        customer_id=row["customer_id"],
        service_id=row["service_id"],
        staff_id=row["staff_id"],
        day=row["day"],
        status=row["status"],
        created_at=row["created_at"],
        customer_telegram_id=row["customer_telegram_id"],
        customer_locale=row["customer_locale"],
    )


async def join(
    conn: asyncpg.Connection,
    *,
    customer_id: int,
    service_id: int,
    staff_id: int | None,
    day: date,
    now: datetime,
) -> int:
    """Insert the wish, or return the id of the same waiting wish (joining twice is harmless)."""
    found = await conn.fetchval(
        "SELECT id FROM waitlist WHERE customer_id = $1 AND service_id = $2 AND day = $3"
        " AND staff_id IS NOT DISTINCT FROM $4 AND status = 'waiting'",
        customer_id,
        service_id,
        day,
        staff_id,
    )
    if found is not None:
        return found
    return await conn.fetchval(
        "INSERT INTO waitlist (customer_id, service_id, staff_id, day, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        customer_id,
        service_id,
        staff_id,
        day,
        now,
    )


async def get(conn: asyncpg.Connection, entry_id: int) -> WaitlistEntry | None:
    row = await conn.fetchrow(_SELECT + " WHERE w.id = $1", entry_id)
    return entry_from_row(row) if row else None


async def leave(
    conn: asyncpg.Connection, *, entry_id: int, customer_id: int, now: datetime
) -> bool:
    status = await conn.execute(
        "UPDATE waitlist SET status = 'left', updated_at = $3"
        " WHERE id = $1 AND customer_id = $2 AND status = 'waiting'",
        entry_id,
        customer_id,
        now,
    )
    return status == "UPDATE 1"


async def for_customer(
    conn: asyncpg.Connection, customer_id: int, today: date
) -> list[WaitlistEntry]:
    rows = await conn.fetch(
        _SELECT + " WHERE w.customer_id = $1 AND w.status = 'waiting' AND w.day >= $2"
        " ORDER BY w.day, w.id",
        customer_id,
        today,
    )
    return [entry_from_row(r) for r in rows]


async def notify_candidates(
    conn: asyncpg.Connection,
    *,
    service_id: int,
    staff_id: int,
    day: date,
    exclude_customer_id: int,
    now: datetime,
) -> list[WaitlistEntry]:
    """Waiting wishes that fit a freed time, first come first served; stamps them notified."""
    rows = await conn.fetch(
        """
        WITH fit AS (
            UPDATE waitlist w SET last_notified_at = $5, updated_at = $5
            WHERE w.service_id = $1 AND w.day = $3 AND w.status = 'waiting'
              AND (w.staff_id IS NULL OR w.staff_id = $2) AND w.customer_id <> $4
            RETURNING w.*
        )
        SELECT fit.*, c.telegram_user_id AS customer_telegram_id, c.locale AS customer_locale
        FROM fit JOIN customers c ON c.id = fit.customer_id
        ORDER BY fit.created_at, fit.id
        """,
        service_id,
        staff_id,
        day,
        exclude_customer_id,
        now,
    )
    return [entry_from_row(r) for r in rows]


async def mark_failed(
    conn: asyncpg.Connection, *, entry_id: int, error: str, now: datetime
) -> bool:
    """Stop offering times to a wish whose customer cannot be told (``failed``, with the error)."""
    status = await conn.execute(
        "UPDATE waitlist SET status = 'failed', last_error = $2, failed_at = $3, updated_at = $3"
        " WHERE id = $1 AND status = 'waiting'",
        entry_id,
        error,
        now,
    )
    return status == "UPDATE 1"
