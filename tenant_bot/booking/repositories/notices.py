"""SQL of the durable booking notices (migration 0070): hand out, claim and settle them."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from tenant_bot.booking.models import BookingDetails
from tenant_bot.booking.repositories.bookings import DETAILS_SELECT, details_from_row

NoticeKey = tuple[int, str, int]
"""(booking id, kind, chat id): one notice to one recipient."""


async def hand_out(
    conn: asyncpg.Connection,
    *,
    owner_ids: list[int],
    now: datetime,
    customer_grace: timedelta,
    limit: int,
) -> int:
    """Turn up to ``limit`` armed bookings into one notice row per recipient and disarm them, in one
    statement; returns how many rows were written.

    Recipients of ``new_booking``: every owner and the booked staff member when their Telegram
    account is linked (one row per chat: an owner who is also the staff member is told once as the
    owner), except whoever made the booking (its first history entry's Telegram id, and for a
    customer's own booking the customer's chat). ``booked``: the customer's confirmation, for a
    booking the customer made in a chat with the bot (the history names their Telegram id; not one
    awaiting or confirmed by payment, whose screens the payment flow owns), due after
    ``customer_grace`` after the booking was made: by then the checkout has shown it and marked it,
    or it is owed.
    SKIP LOCKED lets concurrent loops pass each other's bookings; the primary key keeps one row per
    notice whatever happens.
    """
    status = await conn.execute(
        """
        WITH armed AS (
            SELECT b.id, b.staff_id, b.customer_id, b.payment, b.created_at, b.status
            FROM bookings b
            WHERE b.notice_armed
            ORDER BY b.id
            LIMIT $4
            FOR NO KEY UPDATE OF b SKIP LOCKED
        ), disarmed AS (
            UPDATE bookings b SET notice_armed = NULL FROM armed a WHERE b.id = a.id
        ), made AS (  -- cancelled (or released) before its notices went out: none are sent
            SELECT a.id AS booking_id, a.staff_id, a.payment, a.created_at, h.actor, h.actor_id,
                   c.telegram_user_id AS customer_chat
            FROM armed a
            JOIN customers c ON c.id = a.customer_id
            LEFT JOIN LATERAL (
                SELECT x.actor, x.actor_id FROM booking_history x
                WHERE x.booking_id = a.id ORDER BY x.id LIMIT 1
            ) h ON true
            WHERE a.status IN ('pending', 'confirmed')
        ), told AS (
            SELECT DISTINCT ON (r.booking_id, r.chat_id) r.booking_id, r.chat_id, r.role
            FROM (
                SELECT m.booking_id, o AS chat_id, 'owner' AS role, 1 AS rank
                FROM made m CROSS JOIN unnest($1::bigint[]) AS o
                UNION ALL
                SELECT m.booking_id, st.telegram_user_id, 'staff', 2
                FROM made m JOIN staff st ON st.id = m.staff_id
                WHERE st.active AND st.telegram_user_id IS NOT NULL
            ) r JOIN made m ON m.booking_id = r.booking_id
            WHERE r.chat_id IS DISTINCT FROM m.actor_id
              AND NOT (m.actor = 'customer' AND r.chat_id IS NOT DISTINCT FROM m.customer_chat)
            ORDER BY r.booking_id, r.chat_id, r.rank
        )
        INSERT INTO booking_notices (booking_id, kind, chat_id, role, not_before, created_at)
        SELECT booking_id, 'new_booking', chat_id, role, $2::timestamptz, $2::timestamptz
        FROM told
        UNION ALL
        SELECT booking_id, 'booked', customer_chat, 'customer', created_at + $3::interval,
               $2::timestamptz
        FROM made
        WHERE actor = 'customer' AND actor_id IS NOT NULL AND customer_chat IS NOT NULL
          AND payment = 'none'
        ON CONFLICT DO NOTHING
        """,
        owner_ids,
        now,
        customer_grace,
        limit,
    )
    return int(status.split()[-1])


async def set_aside_interrupted(
    conn: asyncpg.Connection, *, now: datetime, error: str
) -> list[NoticeKey]:
    """Notices whose sender died during the Telegram call (``sending``, lease run out): they may
    have been delivered, so they are set aside as failed instead of being sent again."""
    rows = await conn.fetch(
        """
        UPDATE booking_notices SET state = 'failed', error = $2, settled_at = $1,
                                   claim_token = NULL, claimed_until = NULL
        WHERE state = 'sending' AND claimed_until < $1
        RETURNING booking_id, kind, chat_id
        """,
        now,
        error,
    )
    return [(r["booking_id"], r["kind"], r["chat_id"]) for r in rows]


async def claim(
    conn: asyncpg.Connection, *, now: datetime, lease_until: datetime, token: str, limit: int
) -> list[asyncpg.Record]:
    """Claim up to ``limit`` pending notices that are due (none held by a live lease), oldest due
    first; each row carries its notice's key, role and attempt number and the booking's details."""
    return await conn.fetch(
        f"""
        WITH picked AS (
            SELECT n.booking_id, n.kind, n.chat_id FROM booking_notices n
            WHERE n.state = 'pending' AND n.not_before <= $1
              AND (n.claimed_until IS NULL OR n.claimed_until < $1)
            ORDER BY n.not_before, n.booking_id, n.chat_id
            LIMIT $4
            FOR UPDATE OF n SKIP LOCKED
        ), claimed AS (
            UPDATE booking_notices n
            SET claim_token = $3, claimed_until = $2, attempts = n.attempts + 1
            FROM picked p
            WHERE n.booking_id = p.booking_id AND n.kind = p.kind AND n.chat_id = p.chat_id
            RETURNING n.booking_id AS notice_booking_id, n.kind AS notice_kind,
                      n.chat_id AS notice_chat_id, n.role AS notice_role,
                      n.attempts AS notice_attempts, n.not_before AS notice_due
        )
        SELECT claimed.*, d.* FROM claimed JOIN ({DETAILS_SELECT}) d
            ON d.id = claimed.notice_booking_id
        ORDER BY claimed.notice_due, claimed.notice_booking_id, claimed.notice_chat_id
        """,
        now,
        lease_until,
        token,
        limit,
    )


def details_of(row: asyncpg.Record) -> tuple[NoticeKey, str, int, BookingDetails]:
    """(key, role, attempts, details) of one claimed row."""
    key = (row["notice_booking_id"], row["notice_kind"], row["notice_chat_id"])
    return key, row["notice_role"], row["notice_attempts"], details_from_row(row)


_WHERE_CLAIMED = "booking_id = $1 AND kind = $2 AND chat_id = $3 AND claim_token = $4"


async def start_sending(conn: asyncpg.Connection, key: NoticeKey, token: str) -> bool:
    """Record that the Telegram call is about to be made; False if the claim was lost."""
    status = await conn.execute(
        f"UPDATE booking_notices SET state = 'sending' WHERE {_WHERE_CLAIMED} AND state = 'pending'",
        *key,
        token,
    )
    return status == "UPDATE 1"


async def settle(
    conn: asyncpg.Connection,
    key: NoticeKey,
    token: str,
    *,
    state: str,
    now: datetime,
    error: str | None = None,
) -> bool:
    """``sent`` / ``failed`` after the call, ``skipped`` instead of it; False if the claim was lost."""
    status = await conn.execute(
        f"""
        UPDATE booking_notices SET state = $5, settled_at = $6, error = $7,
                                   claim_token = NULL, claimed_until = NULL
        WHERE {_WHERE_CLAIMED} AND state IN ('pending', 'sending')
        """,
        *key,
        token,
        state,
        now,
        error,
    )
    return status == "UPDATE 1"


async def retry_later(
    conn: asyncpg.Connection, key: NoticeKey, token: str, *, retry_at: datetime, error: str | None
) -> bool:
    """Back to pending after a passing fault; nobody claims it before ``retry_at``."""
    status = await conn.execute(
        f"""
        UPDATE booking_notices SET state = 'pending', not_before = $5, error = $6,
                                   claim_token = NULL, claimed_until = NULL
        WHERE {_WHERE_CLAIMED} AND state = 'sending'
        """,
        *key,
        token,
        retry_at,
        error,
    )
    return status == "UPDATE 1"


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    """When a notice could next be handed out or claimed: an armed booking (due now: -infinity is
    not used, the caller's clock decides), a pending notice's ``not_before`` or a lease's end."""
    return await conn.fetchval(
        """
        SELECT least(
            (SELECT min(b.created_at) FROM bookings b WHERE b.notice_armed),
            (SELECT min(greatest(n.not_before, coalesce(n.claimed_until, n.not_before)))
             FROM booking_notices n WHERE n.state IN ('pending', 'sending')))
        """
    )
