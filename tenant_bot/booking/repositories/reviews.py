"""SQL of reviews: review requests (claimed one at a time), reviews, their totals, the settings."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tenant_bot.booking.models import BookingDetails
from tenant_bot.booking.outreach import OutreachSettings, Review, StaffRating
from tenant_bot.booking.repositories.bookings import DETAILS_SELECT, details_from_row


def settings_from_row(row: asyncpg.Record) -> OutreachSettings:
    return OutreachSettings(
        reviews_enabled=row["reviews_enabled"], review_min_count=row["review_min_count"]
    )


def review_from_row(row: asyncpg.Record) -> Review:
    return Review(
        booking_id=row["booking_id"],
        customer_id=row["customer_id"],
        staff_id=row["staff_id"],
        service_id=row["service_id"],
        stars=row["stars"],
        comment=row["comment"],
        hidden=row["hidden"],
        created_at=row["created_at"],
        customer_name=row["customer_name"],
        staff_name=row["staff_name"],
        service_name=row["service_name"],
    )


_REVIEW_SELECT = """
    SELECT r.*, c.name AS customer_name, st.name AS staff_name, sv.name AS service_name
    FROM reviews r
    JOIN customers c ON c.id = r.customer_id
    JOIN staff st ON st.id = r.staff_id
    JOIN services sv ON sv.id = r.service_id
"""


async def get_settings(conn: asyncpg.Connection) -> OutreachSettings:
    row = await conn.fetchrow("SELECT * FROM outreach_settings")
    return settings_from_row(row)


async def update_settings(
    conn: asyncpg.Connection,
    *,
    reviews_enabled: bool | None,
    review_min_count: int | None,
    now: datetime,
) -> OutreachSettings:
    row = await conn.fetchrow(
        """
        UPDATE outreach_settings SET
            reviews_enabled = coalesce($1, reviews_enabled),
            review_min_count = coalesce($2, review_min_count),
            updated_at = $3
        RETURNING *
        """,
        reviews_enabled,
        review_min_count,
        now,
    )
    return settings_from_row(row)


async def recover_interrupted(conn: asyncpg.Connection, *, claimed_before: datetime) -> int:
    """Requests left 'sending' by a claimer that died: set aside, never asked again (the message
    may have gone out)."""
    status = await conn.execute(
        "UPDATE review_requests SET status = 'failed', settled_at = $1,"
        " last_error = 'interrupted: the sender stopped during the send'"
        " WHERE status = 'sending' AND claimed_at < $1",
        claimed_before,
    )
    return int(status.split()[-1])


async def claim_request(
    conn: asyncpg.Connection, *, now: datetime, token: str
) -> tuple[BookingDetails, int] | None:
    """The next due request, moved to 'sending' under ``token`` (SKIP LOCKED: concurrent claimers
    take different ones), with its booking and attempt number; None when nothing is due.

    A request whose booking is no longer 'done', whose customer already reviewed it, or which
    arrives while reviews are turned off is settled as 'skipped' in the same statement's stead
    (:func:`skip_unwanted` runs first)."""
    row = await conn.fetchrow(
        """
        WITH picked AS (
            SELECT booking_id FROM review_requests
            WHERE status = 'pending' AND due_at <= $1
            ORDER BY due_at, booking_id LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE review_requests r SET status = 'sending', claim_token = $2, claimed_at = $1,
            attempts = r.attempts + 1
        FROM picked WHERE r.booking_id = picked.booking_id
        RETURNING r.booking_id, r.attempts
        """,
        now,
        token,
    )
    if row is None:
        return None
    details = await conn.fetchrow(DETAILS_SELECT + " WHERE b.id = $1", row["booking_id"])
    return details_from_row(details), row["attempts"]


async def skip_unwanted(conn: asyncpg.Connection, *, now: datetime) -> int:
    """Due requests that must not be sent: reviews turned off, the booking no longer 'done', or the
    visit already reviewed."""
    status = await conn.execute(
        """
        UPDATE review_requests r SET status = 'skipped', settled_at = $1
        FROM bookings b
        WHERE b.id = r.booking_id AND r.status = 'pending' AND r.due_at <= $1
          AND (b.status <> 'done'
               OR NOT (SELECT reviews_enabled FROM outreach_settings)
               OR EXISTS (SELECT 1 FROM reviews v WHERE v.booking_id = r.booking_id))
        """,
        now,
    )
    return int(status.split()[-1])


async def settle_request(
    conn: asyncpg.Connection,
    *,
    booking_id: int,
    token: str,
    status: str,
    now: datetime,
    error: str | None,
    retry_at: datetime | None = None,
) -> bool:
    """Settle a claimed request: 'sent' / 'failed', or back to 'pending' due at ``retry_at``."""
    result = await conn.execute(
        """
        UPDATE review_requests SET status = $3::text,
            settled_at = CASE WHEN $3::text = 'pending' THEN NULL ELSE $4::timestamptz END,
            last_error = $5, due_at = coalesce($6::timestamptz, due_at), claim_token = NULL
        WHERE booking_id = $1 AND claim_token = $2 AND status = 'sending'
        """,
        booking_id,
        token,
        status,
        now,
        error,
        retry_at,
    )
    return result == "UPDATE 1"


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    return await conn.fetchval("SELECT min(due_at) FROM review_requests WHERE status = 'pending'")


async def request_status(conn: asyncpg.Connection, booking_id: int) -> str | None:
    return await conn.fetchval(
        "SELECT status FROM review_requests WHERE booking_id = $1", booking_id
    )


async def add_review(
    conn: asyncpg.Connection,
    *,
    booking_id: int,
    customer_telegram_id: int,
    stars: int,
    now: datetime,
) -> Review | None:
    """Record the first rating of a visit by its own customer (the visit 'done'), counting it in
    the totals in the same statement; None when the booking is not theirs, not 'done', or already
    rated."""
    row = await conn.fetchrow(
        """
        WITH visit AS (
            SELECT b.id, b.customer_id, b.staff_id, b.service_id FROM bookings b
            JOIN customers c ON c.id = b.customer_id
            WHERE b.id = $1 AND b.status = 'done' AND c.telegram_user_id = $2
        ), added AS (
            INSERT INTO reviews (booking_id, customer_id, staff_id, service_id, stars,
                                 created_at, updated_at)
            SELECT id, customer_id, staff_id, service_id, $3, $4, $4 FROM visit
            ON CONFLICT (booking_id) DO NOTHING
            RETURNING *
        ), counted AS (
            INSERT INTO review_totals AS t (staff_id, reviews, stars)
            SELECT staff_id, 1, stars FROM added
            ON CONFLICT (staff_id) DO UPDATE
                SET reviews = t.reviews + 1, stars = t.stars + EXCLUDED.stars
        )
        SELECT booking_id FROM added
        """,
        booking_id,
        customer_telegram_id,
        stars,
        now,
    )
    if row is None:
        return None
    return await get_review(conn, booking_id)


async def set_comment(
    conn: asyncpg.Connection,
    *,
    booking_id: int,
    customer_telegram_id: int,
    comment: str,
    now: datetime,
) -> Review | None:
    """Add the comment to the customer's own review, once (None: no such review, or it already
    has one)."""
    row = await conn.fetchrow(
        """
        UPDATE reviews r SET comment = $3, updated_at = $4
        FROM customers c
        WHERE r.booking_id = $1 AND c.id = r.customer_id AND c.telegram_user_id = $2
          AND r.comment = ''
        RETURNING r.booking_id
        """,
        booking_id,
        customer_telegram_id,
        comment,
        now,
    )
    if row is None:
        return None
    return await get_review(conn, booking_id)


async def set_hidden(
    conn: asyncpg.Connection, *, booking_id: int, hidden: bool, now: datetime
) -> Review | None:
    """Hide or show a review, moving the totals in the same statement (nothing when unchanged)."""
    await conn.execute(
        """
        WITH changed AS (
            UPDATE reviews SET hidden = $2, updated_at = $3
            WHERE booking_id = $1 AND hidden <> $2
            RETURNING staff_id, stars
        )
        INSERT INTO review_totals AS t (staff_id, reviews, stars)
        SELECT staff_id, 0, stars FROM changed
        ON CONFLICT (staff_id) DO UPDATE
            SET reviews = t.reviews + (CASE WHEN $2 THEN -1 ELSE 1 END),
                stars = t.stars + (CASE WHEN $2 THEN -1 ELSE 1 END) * EXCLUDED.stars
        """,
        booking_id,
        hidden,
        now,
    )
    return await get_review(conn, booking_id)


async def get_review(conn: asyncpg.Connection, booking_id: int) -> Review | None:
    row = await conn.fetchrow(_REVIEW_SELECT + " WHERE r.booking_id = $1", booking_id)
    return review_from_row(row) if row else None


async def latest(conn: asyncpg.Connection, *, limit: int) -> list[Review]:
    rows = await conn.fetch(_REVIEW_SELECT + " ORDER BY r.created_at DESC LIMIT $1", limit)
    return [review_from_row(r) for r in rows]


async def ratings(conn: asyncpg.Connection) -> tuple[int, list[StaffRating]]:
    """The threshold and every staff member's visible totals, in one round trip."""
    rows = await conn.fetch(
        """
        SELECT s.review_min_count, t.staff_id, t.reviews, t.stars
        FROM outreach_settings s LEFT JOIN review_totals t ON t.reviews > 0
        """
    )
    threshold = rows[0]["review_min_count"]
    return threshold, [
        StaffRating(staff_id=r["staff_id"], reviews=r["reviews"], stars=r["stars"])
        for r in rows
        if r["staff_id"] is not None
    ]
