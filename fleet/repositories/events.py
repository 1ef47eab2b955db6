"""SQL over ``control.events``: the outbox of things to tell tenant owners.

Writers insert inside their own transaction (a payment applied, a tenant suspended, a deployment
live), building the event's payload model (``schemas/events.py``). The sales bot leases due events
(``FOR UPDATE SKIP LOCKED``, then ``next_attempt_at`` pushed past the lease, in one statement), so two
delivering processes never send the same event; it records each recipient right after the send and
the event delivered after the last one, each write committed on its own. An event that cannot be
delivered is marked failed and set aside for an operator.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from fleet.db import Executor
from schemas.events import Event


async def insert_event(db: Executor, *, tenant_id: int | None, event: Event) -> int:
    """Append one event (commits with the caller's transaction); returns its id."""
    event_id = await db.fetchval(
        "INSERT INTO control.events (tenant_id, kind, payload) VALUES ($1, $2, $3) RETURNING id",
        tenant_id,
        event.kind,
        event.payload(),
    )
    assert event_id is not None
    return int(event_id)


async def claim_due(
    db: Executor,
    *,
    kinds: Sequence[str],
    limit: int,
    lease_seconds: float,
    tenant_ids: Sequence[int] | None = None,
) -> list[asyncpg.Record]:
    """Take up to ``limit`` due events of ``kinds`` (oldest first) with their tenant's owners, locale,
    time zone and bot name, leasing them for ``lease_seconds``: no other deliverer sees them until the
    lease ends (``next_attempt_at`` moves past it), so a deliverer that dies mid-batch leaves its
    events to be taken again once their lease runs out. One statement, committed at once."""
    return await db.fetch(
        "WITH due AS ("
        "  SELECT e.id FROM control.events e"
        "  WHERE e.delivered_at IS NULL AND e.failed_at IS NULL AND e.next_attempt_at <= now()"
        "  AND e.kind = ANY($1::text[])"
        "  AND ($3::bigint[] IS NULL OR e.tenant_id = ANY($3::bigint[]))"
        "  ORDER BY e.next_attempt_at, e.id LIMIT $2 FOR UPDATE SKIP LOCKED),"
        " leased AS ("
        "  UPDATE control.events e SET next_attempt_at = now() + make_interval(secs => $4)"
        "  FROM due WHERE e.id = due.id RETURNING e.*)"
        " SELECT l.*, t.owner_telegram_ids, t.locale, t.timezone, t.bot_username,"
        " t.display_name, t.slug"
        " FROM leased l JOIN control.tenants t ON t.id = l.tenant_id ORDER BY l.id",
        list(kinds),
        limit,
        list(tenant_ids) if tenant_ids is not None else None,
        float(lease_seconds),
    )


async def record_sent(db: Executor, event_id: int, recipient: int) -> None:
    """``recipient`` has had this event's message (or was given up on): never send it to them again.
    Written right after the send, on its own, so a crash repeats at most the one message in flight."""
    await db.execute(
        "UPDATE control.events SET sent_to = array_append(sent_to, $2::bigint)"
        " WHERE id = $1 AND NOT $2::bigint = ANY(sent_to)",
        event_id,
        recipient,
    )


async def mark_delivered(db: Executor, event_id: int, *, error: str | None = None) -> None:
    """Done with an event (``error`` notes recipients given up on, e.g. an owner blocked the bot)."""
    await db.execute(
        "UPDATE control.events SET delivered_at = now(), attempts = attempts + 1, last_error = $2"
        " WHERE id = $1",
        event_id,
        error[:2000] if error else None,
    )


async def mark_failed(db: Executor, event_id: int, *, error: str) -> None:
    """Set an event aside: a retry cannot deliver it (or it ran out of attempts). It waits for an
    operator (``botfleet events retry ID``) and no longer holds up anything."""
    await db.execute(
        "UPDATE control.events SET failed_at = now(), last_error = $2 WHERE id = $1",
        event_id,
        error[:2000],
    )


async def postpone(db: Executor, event_id: int, *, error: str, delay_seconds: float) -> None:
    """A delivery failed for a reason that may pass; try again after ``delay_seconds``."""
    await db.execute(
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


# -- the operator's view: failed, pending and delivered events, and retrying a failed one -----------

EVENT_STATES = ("pending", "failed", "delivered")

# An event is in exactly one state; a failed one is failed whatever else is set.
_STATE_OF = (
    "CASE WHEN e.failed_at IS NOT NULL THEN 'failed'"
    " WHEN e.delivered_at IS NOT NULL THEN 'delivered' ELSE 'pending' END"
)
_STATE_WHERE = {
    None: "true",
    "pending": "e.delivered_at IS NULL AND e.failed_at IS NULL",
    "failed": "e.failed_at IS NOT NULL",
    "delivered": "e.delivered_at IS NOT NULL AND e.failed_at IS NULL",
}
_SHOWN = (
    "e.id, e.tenant_id, t.slug AS tenant_slug, e.kind, e.payload, e.created_at,"
    " e.next_attempt_at, e.delivered_at, e.failed_at, e.attempts, e.last_error, e.sent_to,"
    f" {_STATE_OF} AS state"
)


async def list_events(
    db: Executor,
    *,
    state: str | None = None,
    tenant_id: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[asyncpg.Record]:
    """Events newest first (keyset on ``id``: pass the last id seen as ``before_id``), with their
    tenant's slug and ``state`` (pending, failed or delivered)."""
    if state not in _STATE_WHERE:
        raise ValueError(f"state must be one of {', '.join(EVENT_STATES)}, not {state!r}")
    return await db.fetch(
        f"SELECT {_SHOWN} FROM control.events e LEFT JOIN control.tenants t ON t.id = e.tenant_id"
        f" WHERE {_STATE_WHERE[state]}"
        " AND ($1::bigint IS NULL OR e.tenant_id = $1) AND ($2::text IS NULL OR e.kind = $2)"
        " AND ($3::bigint IS NULL OR e.id < $3)"
        " ORDER BY e.id DESC LIMIT $4",
        tenant_id,
        kind,
        before_id,
        limit,
    )


async def get_event(db: Executor, event_id: int) -> asyncpg.Record | None:
    """One event with its tenant's slug and ``state``, or None."""
    return await db.fetchrow(
        f"SELECT {_SHOWN} FROM control.events e LEFT JOIN control.tenants t ON t.id = e.tenant_id"
        " WHERE e.id = $1",
        event_id,
    )


async def retry_event(db: Executor, event_id: int) -> asyncpg.Record | None:
    """Put a failed event back in the outbox, due now with fresh attempts; None unless ``event_id``
    is a failed event. ``sent_to`` is kept, so owners already told are not told again; ``last_error``
    stays until the next attempt says otherwise."""
    return await db.fetchrow(
        "WITH retried AS ("
        "  UPDATE control.events SET failed_at = NULL, delivered_at = NULL,"
        "  next_attempt_at = now(), attempts = 0"
        "  WHERE id = $1 AND failed_at IS NOT NULL RETURNING *)"
        f" SELECT {_SHOWN} FROM retried e LEFT JOIN control.tenants t ON t.id = e.tenant_id",
        event_id,
    )
