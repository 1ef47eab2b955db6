"""SQL of mailings: audiences, the mailing and its recipients' states, the sender's lease, opt-outs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from tenant_bot.booking.outreach import (
    Audience,
    AudienceChoice,
    Broadcast,
    BroadcastCounts,
    Recipient,
)

# A visit: the customer came, or a confirmed booking has ended without being marked either way
# (many owners never tap "came"). No-shows and cancellations are not visits.
_VISIT = "(b.status = 'done' OR (b.status = 'confirmed' AND b.ends_at <= $1))"


def audience_query(choice: AudienceChoice, now: datetime) -> tuple[str, list[Any]]:
    """``SELECT customer_id, chat_id`` of an audience (opted-out customers left out) and its
    arguments (``now`` first for the audiences of visits; a service's is ``service_id`` alone). The conditions are fixed strings chosen by the audience's
    kind, so each is planned as a semi-join over bookings, not a subquery per customer."""
    args: list[Any] = [now]
    if choice.kind is Audience.ALL:
        args, where = [], "true"
    elif choice.kind in (Audience.RECENT, Audience.LAPSED):
        args.append(now - timedelta(days=choice.days or 0))
        since = f"EXISTS (SELECT 1 FROM bookings b WHERE b.customer_id = c.id AND {_VISIT}"
        if choice.kind is Audience.RECENT:
            where = since + " AND b.starts_at >= $2)"
        else:
            where = (
                f"EXISTS (SELECT 1 FROM bookings b WHERE b.customer_id = c.id AND {_VISIT})"
                f" AND NOT {since} AND b.starts_at >= $2)"
                " AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.customer_id = c.id"
                " AND b.status IN ('pending', 'confirmed') AND b.ends_at > $1)"
            )
    else:
        args = [choice.service_id]
        where = (
            "EXISTS (SELECT 1 FROM bookings b WHERE b.customer_id = c.id"
            " AND b.service_id = $1 AND b.status <> 'cancelled')"
        )
    sql = (
        "SELECT c.id AS customer_id, c.telegram_user_id AS chat_id FROM customers c"
        " WHERE NOT EXISTS (SELECT 1 FROM mailing_opt_outs o WHERE o.customer_id = c.id)"
        f" AND {where}"
    )
    return sql, args


def broadcast_from_row(row: asyncpg.Record) -> Broadcast:
    return Broadcast(
        id=row["id"],
        text=row["text"],
        photo_file_id=row["photo_file_id"],
        audience=AudienceChoice(
            Audience(row["audience"]), row["audience_days"], row["audience_service_id"]
        ),
        status=row["status"],
        recipients=row["recipients"],
        created_by=row["created_by"],
        progress_chat_id=row["progress_chat_id"],
        progress_message_id=row["progress_message_id"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


async def count_audience(conn: asyncpg.Connection, choice: AudienceChoice, now: datetime) -> int:
    sql, args = audience_query(choice, now)
    return int(await conn.fetchval(f"SELECT count(*) FROM ({sql}) a", *args))


async def create(
    conn: asyncpg.Connection,
    *,
    draft_key: str,
    text: str,
    photo_file_id: str | None,
    choice: AudienceChoice,
    created_by: int,
    now: datetime,
) -> tuple[Broadcast, bool]:
    """The mailing and a pending row per recipient of its audience as it is now (call inside a
    transaction). A second call with the same ``draft_key`` (a double tap on "Send") returns the
    first mailing and False."""
    row = await conn.fetchrow(
        """
        INSERT INTO broadcasts (draft_key, text, photo_file_id, audience, audience_days,
                                audience_service_id, recipients, created_by, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)
        ON CONFLICT (draft_key) DO NOTHING
        RETURNING *
        """,
        draft_key,
        text,
        photo_file_id,
        choice.kind.value,
        choice.days,
        choice.service_id,
        created_by,
        now,
    )
    if row is None:
        existing = await conn.fetchrow("SELECT * FROM broadcasts WHERE draft_key = $1", draft_key)
        return broadcast_from_row(existing), False
    sql, args = audience_query(choice, now)
    status = await conn.execute(
        "INSERT INTO broadcast_recipients (broadcast_id, customer_id, chat_id)"
        f" SELECT ${len(args) + 1}, customer_id, chat_id FROM ({sql}) a",
        *args,
        row["id"],
    )
    total = int(status.split()[-1])
    row = await conn.fetchrow(
        "UPDATE broadcasts SET recipients = $2,"
        " status = CASE WHEN $2 = 0 THEN 'done' ELSE status END,"
        " finished_at = CASE WHEN $2 = 0 THEN $3::timestamptz END"
        " WHERE id = $1 RETURNING *",
        row["id"],
        total,
        now,
    )
    return broadcast_from_row(row), True


async def set_progress_message(
    conn: asyncpg.Connection, broadcast_id: int, *, chat_id: int, message_id: int
) -> None:
    await conn.execute(
        "UPDATE broadcasts SET progress_chat_id = $2, progress_message_id = $3 WHERE id = $1",
        broadcast_id,
        chat_id,
        message_id,
    )


async def get(conn: asyncpg.Connection, broadcast_id: int) -> Broadcast | None:
    row = await conn.fetchrow("SELECT * FROM broadcasts WHERE id = $1", broadcast_id)
    return broadcast_from_row(row) if row else None


async def recent(conn: asyncpg.Connection, *, limit: int) -> list[Broadcast]:
    rows = await conn.fetch("SELECT * FROM broadcasts ORDER BY id DESC LIMIT $1", limit)
    return [broadcast_from_row(r) for r in rows]


async def acquire_lease(
    conn: asyncpg.Connection, *, token: str, now: datetime, until: datetime
) -> Broadcast | None:
    """Take (or renew) the tenant's one sending lease on its oldest mailing being sent; None when
    nothing is being sent or another sender's lease is still running. SKIP LOCKED: of two senders
    asking at once, one gets it."""
    row = await conn.fetchrow(
        """
        UPDATE broadcasts SET lease_token = $1, lease_until = $3
        WHERE id = (SELECT id FROM broadcasts WHERE status = 'sending'
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
          AND NOT EXISTS (SELECT 1 FROM broadcasts o
                          WHERE o.status = 'sending' AND o.lease_until >= $2
                            AND o.lease_token IS DISTINCT FROM $1)
        RETURNING *
        """,
        token,
        now,
        until,
    )
    return broadcast_from_row(row) if row else None


async def any_sending(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM broadcasts WHERE status = 'sending' LIMIT 1"))


async def release_lease(conn: asyncpg.Connection, broadcast_id: int, *, token: str) -> None:
    await conn.execute(
        "UPDATE broadcasts SET lease_token = NULL, lease_until = NULL"
        " WHERE id = $1 AND lease_token = $2",
        broadcast_id,
        token,
    )


async def recover_interrupted(
    conn: asyncpg.Connection, broadcast_id: int, *, token: str, now: datetime
) -> int:
    """Rows left 'sending' by an earlier lease holder: set aside as failed, never sent again."""
    status = await conn.execute(
        "UPDATE broadcast_recipients SET state = 'failed', settled_at = $3,"
        " error = 'interrupted: the sender stopped during the send'"
        " WHERE broadcast_id = $1 AND state = 'sending' AND claim_token IS DISTINCT FROM $2",
        broadcast_id,
        token,
        now,
    )
    return int(status.split()[-1])


async def due_recipients(
    conn: asyncpg.Connection, broadcast_id: int, *, now: datetime, limit: int
) -> list[Recipient]:
    rows = await conn.fetch(
        """
        SELECT r.customer_id, r.chat_id, r.attempts, c.locale FROM broadcast_recipients r
        JOIN customers c ON c.id = r.customer_id
        WHERE r.broadcast_id = $1 AND r.state = 'pending'
          AND (r.not_before IS NULL OR r.not_before <= $2)
        ORDER BY r.customer_id LIMIT $3
        """,
        broadcast_id,
        now,
        limit,
    )
    return [Recipient(r["customer_id"], r["chat_id"], r["attempts"], r["locale"]) for r in rows]


async def next_retry(conn: asyncpg.Connection, broadcast_id: int) -> datetime | None:
    """The earliest ``not_before`` of the recipients waiting for a retry (None: none waits)."""
    return await conn.fetchval(
        "SELECT min(not_before) FROM broadcast_recipients"
        " WHERE broadcast_id = $1 AND state = 'pending'",
        broadcast_id,
    )


async def claim(
    conn: asyncpg.Connection, broadcast_id: int, customer_id: int, *, token: str, now: datetime
) -> str | None:
    """Move one pending recipient to 'sending' under ``token`` before its message goes out, or to
    'skipped' if they opted out since; the new state, or None when it was not pending."""
    return await conn.fetchval(
        """
        UPDATE broadcast_recipients r SET
            state = CASE WHEN EXISTS (SELECT 1 FROM mailing_opt_outs o
                                      WHERE o.customer_id = r.customer_id)
                         THEN 'skipped' ELSE 'sending' END,
            claim_token = $3, attempts = r.attempts + 1,
            settled_at = CASE WHEN EXISTS (SELECT 1 FROM mailing_opt_outs o
                                           WHERE o.customer_id = r.customer_id)
                              THEN $4::timestamptz END
        WHERE broadcast_id = $1 AND customer_id = $2 AND state = 'pending'
        RETURNING state
        """,
        broadcast_id,
        customer_id,
        token,
        now,
    )


async def settle(
    conn: asyncpg.Connection,
    broadcast_id: int,
    customer_id: int,
    *,
    token: str,
    state: str,
    now: datetime,
    error: str | None,
    not_before: datetime | None,
) -> bool:
    status = await conn.execute(
        """
        UPDATE broadcast_recipients SET state = $4::text, error = $6, not_before = $7,
            settled_at = CASE WHEN $4::text = 'pending' THEN NULL ELSE $5::timestamptz END
        WHERE broadcast_id = $1 AND customer_id = $2 AND claim_token = $3 AND state = 'sending'
        """,
        broadcast_id,
        customer_id,
        token,
        state,
        now,
        error,
        not_before,
    )
    return status == "UPDATE 1"


async def counts(conn: asyncpg.Connection, broadcast_id: int) -> BroadcastCounts:
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM broadcast_recipients WHERE broadcast_id = $1"
        " GROUP BY state",
        broadcast_id,
    )
    by_state = {r["state"]: int(r["n"]) for r in rows}
    return BroadcastCounts(
        total=sum(by_state.values()),
        sent=by_state.get("sent", 0),
        blocked=by_state.get("blocked", 0),
        failed=by_state.get("failed", 0),
        skipped=by_state.get("skipped", 0),
        pending=by_state.get("pending", 0) + by_state.get("sending", 0),
    )


async def finish(conn: asyncpg.Connection, broadcast_id: int, *, now: datetime) -> bool:
    """Mark the mailing done once no recipient is left open; False while some are."""
    status = await conn.execute(
        """
        UPDATE broadcasts SET status = 'done', finished_at = $2, lease_token = NULL,
            lease_until = NULL
        WHERE id = $1 AND status = 'sending'
          AND NOT EXISTS (SELECT 1 FROM broadcast_recipients r WHERE r.broadcast_id = $1
                          AND r.state IN ('pending', 'sending'))
        """,
        broadcast_id,
        now,
    )
    return status == "UPDATE 1"


async def cancel(conn: asyncpg.Connection, broadcast_id: int, *, now: datetime) -> bool:
    """Stop a mailing being sent: its recipients not reached yet are skipped."""
    status = await conn.execute(
        "UPDATE broadcasts SET status = 'cancelled', finished_at = $2"
        " WHERE id = $1 AND status = 'sending'",
        broadcast_id,
        now,
    )
    if status != "UPDATE 1":
        return False
    await conn.execute(
        "UPDATE broadcast_recipients SET state = 'skipped', settled_at = $2,"
        " error = 'cancelled by the owner' WHERE broadcast_id = $1 AND state = 'pending'",
        broadcast_id,
        now,
    )
    return True


async def claim_report(conn: asyncpg.Connection, broadcast_id: int, *, now: datetime) -> bool:
    """True once for a finished mailing: the one caller that may send its final report."""
    status = await conn.execute(
        "UPDATE broadcasts SET reported_at = $2"
        " WHERE id = $1 AND status <> 'sending' AND reported_at IS NULL",
        broadcast_id,
        now,
    )
    return status == "UPDATE 1"


async def unreported(conn: asyncpg.Connection, *, limit: int) -> list[Broadcast]:
    """Finished mailings whose final report was not sent yet (their sender stopped in between)."""
    rows = await conn.fetch(
        "SELECT * FROM broadcasts WHERE status <> 'sending' AND reported_at IS NULL"
        " ORDER BY id LIMIT $1",
        limit,
    )
    return [broadcast_from_row(r) for r in rows]


async def set_opt_out(
    conn: asyncpg.Connection, telegram_user_id: int, *, out: bool, now: datetime
) -> bool:
    """Opt the customer of a Telegram user out of mailings (or back in); False when the user is no
    customer."""
    if out:
        status = await conn.execute(
            "INSERT INTO mailing_opt_outs (customer_id, at)"
            " SELECT id, $2 FROM customers WHERE telegram_user_id = $1"
            " ON CONFLICT (customer_id) DO NOTHING",
            telegram_user_id,
            now,
        )
        return status != "INSERT 0 0" or await is_opted_out(conn, telegram_user_id)
    await conn.execute(
        "DELETE FROM mailing_opt_outs o USING customers c"
        " WHERE c.id = o.customer_id AND c.telegram_user_id = $1",
        telegram_user_id,
    )
    return bool(
        await conn.fetchval("SELECT 1 FROM customers WHERE telegram_user_id = $1", telegram_user_id)
    )


async def is_opted_out(conn: asyncpg.Connection, telegram_user_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM mailing_opt_outs o JOIN customers c ON c.id = o.customer_id"
            " WHERE c.telegram_user_id = $1",
            telegram_user_id,
        )
    )
