"""SQL for reminders that ask: the customer's "I'll come", releasing unconfirmed bookings, and the
count of a customer's no-shows."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tenant_bot.booking.models import Booking, BookingDetails
from tenant_bot.booking.repositories.bookings import booking_from_row, details_from_row

RELEASE_REASON = "released: the customer did not confirm"


async def confirm_attendance(
    conn: asyncpg.Connection, *, booking_id: int, now: datetime, actor_id: int | None
) -> Booking:
    """Record "I'll come" on a booking the caller locked and checked; a repeat keeps the first time
    and writes no second history entry."""
    row = await conn.fetchrow(
        """
        WITH changed AS (
            UPDATE bookings SET customer_confirmed_at = $2
            WHERE id = $1 AND customer_confirmed_at IS NULL RETURNING *
        ), history AS (
            INSERT INTO booking_history (booking_id, at, actor, actor_id, from_status, to_status,
                                         reason)
            SELECT id, $2, 'customer', $3, status, status, 'confirmed they will come' FROM changed
        )
        SELECT * FROM changed
        """,
        booking_id,
        now,
        actor_id,
    )
    if row is None:
        row = await conn.fetchrow("SELECT * FROM bookings WHERE id = $1", booking_id)
    return booking_from_row(row)


async def release_unconfirmed(
    conn: asyncpg.Connection, *, now: datetime, limit: int
) -> list[BookingDetails]:
    """Cancel (as the system) up to ``limit`` active bookings whose release time has come: the
    owner's ``release_unconfirmed_hours`` before the start, the customer reminded of this start
    time (a reminder of a time the booking was moved from does not count) before then and silent
    since. Locked rows are skipped (a customer answering right now wins, or is told the
    booking is gone). Returns the released bookings with names."""
    rows = await conn.fetch(
        """
        WITH picked AS (
            SELECT b.id, b.status FROM bookings b CROSS JOIN settings s
            WHERE s.release_unconfirmed_hours IS NOT NULL
              AND b.status IN ('pending', 'confirmed') AND b.customer_confirmed_at IS NULL
              AND b.starts_at > $1
              AND b.starts_at - make_interval(hours => s.release_unconfirmed_hours) <= $1
              AND EXISTS (
                  SELECT 1 FROM reminders r
                  WHERE r.booking_id = b.id AND r.status = 'sent'
                    AND r.due_at = b.starts_at - make_interval(mins => r.offset_minutes)
                    AND r.sent_at
                        <= b.starts_at - make_interval(hours => s.release_unconfirmed_hours))
            ORDER BY b.starts_at, b.id
            LIMIT $2
            FOR UPDATE OF b SKIP LOCKED
        ), released AS (
            UPDATE bookings b SET status = 'cancelled', cancelled_by = 'system', updated_at = $1,
                reminder_offsets = '{}', first_reminder_at = NULL
            FROM picked WHERE b.id = picked.id
            RETURNING b.*
        ), history AS (
            INSERT INTO booking_history (booking_id, at, actor, from_status, to_status, reason)
            SELECT p.id, $1, 'system', p.status, 'cancelled', $3 FROM picked p
        ), silenced AS (
            UPDATE reminders SET status = 'cancelled', claim_token = NULL, claimed_until = NULL
            WHERE booking_id IN (SELECT id FROM picked) AND status = 'pending'
        )
        SELECT b.*, sv.name AS service_name, st.name AS staff_name, c.name AS customer_name,
               c.phone AS customer_phone, c.telegram_user_id AS customer_telegram_id,
               c.locale AS customer_locale
        FROM released b
        JOIN services sv ON sv.id = b.service_id
        JOIN staff st ON st.id = b.staff_id
        JOIN customers c ON c.id = b.customer_id
        ORDER BY b.starts_at, b.id
        """,
        now,
        limit,
        RELEASE_REASON,
    )
    return [details_from_row(r) for r in rows]


async def count_no_shows(conn: asyncpg.Connection, customer_id: int) -> int:
    """How many of the customer's bookings the owner marked no-show."""
    return await conn.fetchval(
        "SELECT count(*) FROM bookings WHERE customer_id = $1 AND status = 'no_show'", customer_id
    )
