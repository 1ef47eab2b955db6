"""SQL over ``control.events``: the outbox of things to tell tenant owners.

Writers insert inside their own transaction (a payment applied, a tenant suspended, a deployment
live); the sales bot claims undelivered events with ``FOR UPDATE SKIP LOCKED``, so two delivering
processes never send the same event, and marks them delivered in that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

Executor = asyncpg.Connection | asyncpg.Pool


async def insert_event(
    db: Executor, *, tenant_id: int | None, kind: str, payload: dict[str, Any] | None = None
) -> int:
    """Append one event (commits with the caller's transaction); returns its id."""
    event_id = await db.fetchval(
        "INSERT INTO control.events (tenant_id, kind, payload) VALUES ($1, $2, $3) RETURNING id",
        tenant_id,
        kind,
        payload or {},
    )
    assert event_id is not None
    return int(event_id)


async def claim_undelivered(
    conn: asyncpg.Connection,
    *,
    kinds: Sequence[str],
    limit: int,
    tenant_ids: Sequence[int] | None = None,
) -> list[asyncpg.Record]:
    """Lock up to ``limit`` due, undelivered events of ``kinds`` (oldest first) with their tenant's
    owners and locale. Call inside a transaction; rows locked by another deliverer are skipped."""
    return await conn.fetch(
        "SELECT e.*, t.owner_telegram_ids, t.locale, t.timezone, t.bot_username, t.display_name,"
        " t.slug"
        " FROM control.events e JOIN control.tenants t ON t.id = e.tenant_id"
        " WHERE e.delivered_at IS NULL AND e.next_attempt_at <= now() AND e.kind = ANY($1::text[])"
        " AND ($3::bigint[] IS NULL OR e.tenant_id = ANY($3::bigint[]))"
        " ORDER BY e.id LIMIT $2 FOR UPDATE OF e SKIP LOCKED",
        list(kinds),
        limit,
        list(tenant_ids) if tenant_ids is not None else None,
    )


async def mark_delivered(conn: Executor, event_id: int, *, error: str | None = None) -> None:
    """Done with an event (``error`` notes a delivery given up, e.g. the owner blocked the bot)."""
    await conn.execute(
        "UPDATE control.events SET delivered_at = now(), attempts = attempts + 1,"
        " last_error = $2 WHERE id = $1",
        event_id,
        error,
    )


async def postpone(conn: Executor, event_id: int, *, error: str, delay_seconds: float) -> None:
    """A delivery failed for a reason that may pass; try again after ``delay_seconds``."""
    await conn.execute(
        "UPDATE control.events SET attempts = attempts + 1, last_error = $2,"
        " next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
        event_id,
        error[:2000],
        float(delay_seconds),
    )


async def list_for_tenant(db: Executor, tenant_id: int) -> list[asyncpg.Record]:
    """A tenant's events, oldest first."""
    return await db.fetch(
        "SELECT * FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant_id
    )


async def outbox_stats(db: Executor, *, kinds: Sequence[str]) -> dict[str, float]:
    """The outbox at a glance, for metrics: events of ``kinds`` waiting to be delivered, the age in
    seconds of the oldest of them (0 when none), and events set aside as failed."""
    row = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL) AS pending,"
        " coalesce(extract(epoch FROM now() - min(created_at)"
        "   FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL)), 0) AS oldest_age_s,"
        " count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed"
        " FROM control.events WHERE kind = ANY($1::text[])"
        " AND (delivered_at IS NULL OR failed_at IS NOT NULL)",
        list(kinds),
    )
    assert row is not None
    return {
        "pending": float(row["pending"]),
        "oldest_pending_age_seconds": float(row["oldest_age_s"]),
        "failed": float(row["failed"]),
    }
