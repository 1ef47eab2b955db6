"""SQL for claiming and settling reminders and completion prompts."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tenant_bot.booking.models import BookingDetails
from tenant_bot.booking.repositories.bookings import details_from_row


async def claim_due(
    conn: asyncpg.Connection, *, now: datetime, lease_until: datetime, token: str, limit: int
) -> list[tuple[int, int, datetime, int, BookingDetails]]:
    """Claim up to ``limit`` due reminders of active, not yet started bookings.

    A due reminder is either still armed on its booking (``bookings.reminder_offsets``, migration
    0003) — claiming it takes the offset off the booking and writes the reminder's row, in one
    statement — or a row whose earlier claim was released or whose lease (``claimed_until``) ran out
    because its claimer died before :func:`mark_sent` (a release after a passing failure sets
    ``claimed_until`` to the time of the next attempt, so the lease check is also the backoff).
    Each claim carries its attempt number (1 for the first). SKIP LOCKED lets concurrent claimers pass each
    other's bookings and rows; a claimer that waited for another's booking row sees the offsets that
    are left on it. The unique (booking, offset) row is the one claim, so none is claimed twice.
    """
    rows = await conn.fetch(
        """
        WITH armed AS (
            SELECT b.id, b.starts_at, b.reminder_offsets FROM bookings b
            WHERE b.first_reminder_at <= $1 AND b.status IN ('pending', 'confirmed')
              AND b.starts_at > $1
              AND EXISTS (SELECT 1 FROM unnest(b.reminder_offsets) AS o
                          WHERE b.starts_at - make_interval(mins => o) <= $1)
            ORDER BY b.first_reminder_at, b.id
            LIMIT $4
            FOR NO KEY UPDATE OF b SKIP LOCKED
        ), due AS (
            SELECT a.id AS booking_id, o AS offset_minutes,
                   a.starts_at - make_interval(mins => o) AS due_at
            FROM armed a CROSS JOIN LATERAL unnest(a.reminder_offsets) AS o
            WHERE a.starts_at - make_interval(mins => o) <= $1
            ORDER BY 3, 1, 2
            LIMIT $4
        ), disarmed AS (
            UPDATE bookings b SET reminder_offsets = array(
                SELECT o FROM unnest(b.reminder_offsets) AS o
                WHERE NOT EXISTS (SELECT 1 FROM due d
                                  WHERE d.booking_id = b.id AND d.offset_minutes = o))
            FROM (SELECT DISTINCT booking_id FROM due) t
            WHERE b.id = t.booking_id
        ), fresh AS (
            INSERT INTO reminders (booking_id, offset_minutes, due_at, claim_token, claimed_until,
                                   attempts)
            SELECT booking_id, offset_minutes, due_at, $3, $2, 1 FROM due
            ON CONFLICT (booking_id, offset_minutes) DO NOTHING
            RETURNING id AS reminder_id, booking_id, offset_minutes, due_at, attempts
        ), picked AS (
            SELECT r.id, r.due_at FROM reminders r JOIN bookings b ON b.id = r.booking_id
            WHERE r.status = 'pending' AND r.due_at <= $1
              AND (r.claimed_until IS NULL OR r.claimed_until < $1)
              AND b.status IN ('pending', 'confirmed') AND b.starts_at > $1
            ORDER BY r.due_at, r.id
            LIMIT $4
            FOR UPDATE OF r SKIP LOCKED
        ), reclaimed AS (
            UPDATE reminders r SET claim_token = $3, claimed_until = $2, attempts = attempts + 1
            FROM (SELECT id FROM picked ORDER BY due_at, id
                  LIMIT greatest($4 - (SELECT count(*) FROM fresh), 0)) p
            WHERE r.id = p.id
            RETURNING r.id AS reminder_id, r.booking_id, r.offset_minutes, r.due_at, r.attempts
        ), claimed AS (
            SELECT * FROM fresh UNION ALL SELECT * FROM reclaimed
        )
        SELECT claimed.reminder_id, claimed.offset_minutes, claimed.due_at,
               claimed.attempts AS claim_attempts, d.*
        FROM claimed JOIN (
            SELECT b.*, sv.name AS service_name, st.name AS staff_name, c.name AS customer_name,
                   c.phone AS customer_phone, c.telegram_user_id AS customer_telegram_id,
                   c.locale AS customer_locale
            FROM bookings b
            JOIN services sv ON sv.id = b.service_id
            JOIN staff st ON st.id = b.staff_id
            JOIN customers c ON c.id = b.customer_id
        ) d ON d.id = claimed.booking_id
        ORDER BY claimed.due_at, claimed.reminder_id
        """,
        now,
        lease_until,
        token,
        limit,
    )
    return [
        (
            r["reminder_id"],
            r["offset_minutes"],
            r["due_at"],
            r["claim_attempts"],
            details_from_row(r),
        )
        for r in rows
    ]


async def expire_stale(conn: asyncpg.Connection, *, now: datetime) -> int:
    """Cancel pending reminders whose booking started or stopped being active (never to be sent)."""
    status = await conn.execute(
        """
        UPDATE reminders r SET status = 'cancelled', claim_token = NULL, claimed_until = NULL
        FROM bookings b
        WHERE b.id = r.booking_id AND r.status = 'pending'
          AND (b.starts_at <= $1 OR b.status NOT IN ('pending', 'confirmed'))
        """,
        now,
    )
    return int(status.split()[-1])


async def mark_sent(
    conn: asyncpg.Connection, *, reminder_id: int, token: str, now: datetime
) -> bool:
    status = await conn.execute(
        "UPDATE reminders SET status = 'sent', sent_at = $3, claimed_until = NULL"
        " WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
        reminder_id,
        token,
        now,
    )
    return status == "UPDATE 1"


async def release(
    conn: asyncpg.Connection,
    *,
    reminder_id: int,
    token: str,
    retry_at: datetime | None,
    error: str | None,
) -> bool:
    """Give the claim back; no claimer takes it before ``retry_at`` (None: at once)."""
    status = await conn.execute(
        "UPDATE reminders SET claim_token = NULL, claimed_until = $3, last_error = $4"
        " WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
        reminder_id,
        token,
        retry_at,
        error,
    )
    return status == "UPDATE 1"


async def mark_failed(
    conn: asyncpg.Connection, *, reminder_id: int, token: str, error: str, now: datetime
) -> bool:
    """Set the reminder aside for good (``failed``, with its error); never claimed again."""
    status = await conn.execute(
        "UPDATE reminders SET status = 'failed', failed_at = $3, last_error = $4,"
        " claimed_until = NULL WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
        reminder_id,
        token,
        now,
        error,
    )
    return status == "UPDATE 1"


async def for_booking(conn: asyncpg.Connection, booking_id: int) -> list[asyncpg.Record]:
    """The booking's reminders (offset_minutes, due_at, status), latest offset first: claimed ones
    as recorded, armed ones not claimed yet as ``pending`` (``cancelled`` once the booking is not
    active)."""
    return await conn.fetch(
        """
        SELECT r.offset_minutes, r.due_at, r.status FROM reminders r WHERE r.booking_id = $1
        UNION ALL
        SELECT o, b.starts_at - make_interval(mins => o),
               CASE WHEN b.status IN ('pending', 'confirmed') THEN 'pending' ELSE 'cancelled' END
        FROM bookings b CROSS JOIN LATERAL unnest(b.reminder_offsets) AS o
        WHERE b.id = $1
        ORDER BY 1 DESC
        """,
        booking_id,
    )


async def claim_completion_prompts(
    conn: asyncpg.Connection, *, now: datetime, limit: int
) -> list[tuple[BookingDetails, int]]:
    """Confirmed bookings that ended and were never put to the owner (or whose card waits for a retry
    that is due now); marks them prompted. Each comes with its attempt number (1 for the first)."""
    rows = await conn.fetch(
        """
        WITH picked AS (
            SELECT id FROM bookings
            WHERE status = 'confirmed' AND completion_prompted_at IS NULL AND ends_at <= $1
              AND (completion_retry_at IS NULL OR completion_retry_at <= $1)
            ORDER BY ends_at, id LIMIT $2
            FOR UPDATE SKIP LOCKED
        ), marked AS (
            UPDATE bookings b SET completion_prompted_at = $1 FROM picked
            WHERE b.id = picked.id RETURNING b.id
        )
        SELECT b.*, sv.name AS service_name, st.name AS staff_name, c.name AS customer_name,
               c.phone AS customer_phone, c.telegram_user_id AS customer_telegram_id,
               c.locale AS customer_locale
        FROM marked JOIN bookings b ON b.id = marked.id
        JOIN services sv ON sv.id = b.service_id
        JOIN staff st ON st.id = b.staff_id
        JOIN customers c ON c.id = b.customer_id
        ORDER BY b.ends_at, b.id
        """,
        now,
        limit,
    )
    return [(details_from_row(r), (r["completion_attempts"] or 0) + 1) for r in rows]


async def retry_completion_prompt(
    conn: asyncpg.Connection, *, booking_id: int, attempts: int, retry_at: datetime, error: str
) -> bool:
    """Put a claimed card back, to be claimed again from ``retry_at`` (a passing failure)."""
    status = await conn.execute(
        "UPDATE bookings SET completion_prompted_at = NULL, completion_attempts = $2,"
        " completion_retry_at = $3, completion_error = $4"
        " WHERE id = $1 AND completion_prompted_at IS NOT NULL",
        booking_id,
        attempts,
        retry_at,
        error,
    )
    return status == "UPDATE 1"


async def fail_completion_prompt(
    conn: asyncpg.Connection, *, booking_id: int, attempts: int, error: str
) -> bool:
    """Record why a claimed card can never be delivered; it stays prompted (never claimed again)."""
    status = await conn.execute(
        "UPDATE bookings SET completion_attempts = $2, completion_retry_at = NULL,"
        " completion_error = $3 WHERE id = $1 AND completion_prompted_at IS NOT NULL",
        booking_id,
        attempts,
        error,
    )
    return status == "UPDATE 1"


async def next_due(conn: asyncpg.Connection, *, now: datetime) -> datetime | None:
    """The earliest time :func:`claim_due` or :func:`claim_completion_prompts` could claim
    something: an offset still armed on an active booking ahead, a reminder row waiting for its
    time or for its lease (or backoff) to end, a confirmed booking's end not yet put to the owner,
    an unconfirmed booking's release time (when the owner releases them).
    None when there is nothing."""
    return await conn.fetchval(
        """
        SELECT least(
            (SELECT min(b.starts_at - make_interval(
                        mins => (SELECT max(o) FROM unnest(b.reminder_offsets) AS o)))
             FROM bookings b
             WHERE b.status IN ('pending', 'confirmed') AND b.first_reminder_at IS NOT NULL
               AND b.starts_at > $1 AND cardinality(b.reminder_offsets) > 0),
            (SELECT min(greatest(r.due_at, coalesce(r.claimed_until, r.due_at)))
             FROM reminders r JOIN bookings b ON b.id = r.booking_id
             WHERE r.status = 'pending' AND b.status IN ('pending', 'confirmed')
               AND b.starts_at > $1),
            (SELECT min(greatest(ends_at, coalesce(completion_retry_at, ends_at)))
             FROM bookings
             WHERE status = 'confirmed' AND completion_prompted_at IS NULL),
            -- an unconfirmed booking's release (repositories.attendance.release_unconfirmed)
            (SELECT min(b.starts_at - make_interval(hours => s.release_unconfirmed_hours))
             FROM bookings b CROSS JOIN settings s
             WHERE s.release_unconfirmed_hours IS NOT NULL
               AND b.status IN ('pending', 'confirmed') AND b.customer_confirmed_at IS NULL
               AND b.starts_at > $1
               AND EXISTS (
                   SELECT 1 FROM reminders r
                   WHERE r.booking_id = b.id AND r.status = 'sent'
                    AND r.due_at = b.starts_at - make_interval(mins => r.offset_minutes)
                     AND r.sent_at
                         <= b.starts_at - make_interval(hours => s.release_unconfirmed_hours)))
        )
        """,
        now,
    )


async def rearm_future(conn: asyncpg.Connection, *, offsets: list[int], now: datetime) -> int:
    """The owner changed the reminder offsets: arm ``offsets`` on every active booking not started
    yet, each offset whose time is still ahead and that was not claimed for the booking already
    (a reminder sent, failed for good, or being sent keeps its row and is not sent again); unsent
    claims of offsets no longer wanted are dropped. Returns how many bookings were re-armed.

    Runs in the caller's transaction. The bookings are locked first (claimers skip them until
    commit), so the statements after see every claim committed before; the unique (booking, offset)
    row stays the one claim either way."""
    await conn.execute(
        "SELECT 1 FROM bookings WHERE status IN ('pending', 'confirmed') AND starts_at > $1"
        " ORDER BY id FOR NO KEY UPDATE",
        now,
    )
    # cancelled rows (an offset dropped before, a booking moved) would swallow a re-armed offset's
    # claim: forget them, with the unsent claims of offsets no longer wanted
    await conn.execute(
        """
        DELETE FROM reminders r USING bookings b
        WHERE b.id = r.booking_id AND b.status IN ('pending', 'confirmed') AND b.starts_at > $1
          AND (r.status = 'cancelled'
               OR (r.status = 'pending' AND NOT r.offset_minutes = ANY ($2::int[])))
        """,
        now,
        offsets,
    )
    status = await conn.execute(
        """
        WITH target AS (
            SELECT b.id, b.starts_at,
                   array(SELECT o FROM unnest($2::int[]) AS o
                         WHERE b.starts_at - make_interval(mins => o) > $1
                           AND NOT EXISTS (SELECT 1 FROM reminders r
                                           WHERE r.booking_id = b.id AND r.offset_minutes = o)
                         ORDER BY o DESC) AS offsets
            FROM bookings b
            WHERE b.status IN ('pending', 'confirmed') AND b.starts_at > $1
        )
        UPDATE bookings b SET reminder_offsets = t.offsets,
            first_reminder_at = t.starts_at - make_interval(
                mins => (SELECT max(o) FROM unnest(t.offsets) AS o))
        FROM target t WHERE b.id = t.id
        """,
        now,
        offsets,
    )
    return int(status.split()[-1])
