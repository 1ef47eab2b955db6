"""SQL over ``control.refunds`` (and what a refund changes in ``control.subscriptions``).

A refund row is inserted under the payment's row lock (``payment_writes.lock_payment``), so the sum of
refunds that are not canceled never exceeds the payment, however many refunds race; ``applied_at`` is
set once, under the refund's own row lock, which makes replayed ``refund.succeeded`` notifications
no-ops.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from fleet.db import Executor


async def find_by_key(
    db: Executor, payment_id: uuid.UUID, request_key: str
) -> asyncpg.Record | None:
    """The refund a caller's key already made for this payment."""
    return await db.fetchrow(
        "SELECT * FROM control.refunds WHERE payment_id = $1 AND request_key = $2",
        payment_id,
        request_key,
    )


async def reserved_amount(db: Executor, payment_id: uuid.UUID) -> Decimal:
    """What is refunded or being refunded of a payment (every refund not canceled)."""
    value = await db.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM control.refunds"
        " WHERE payment_id = $1 AND status <> 'canceled'",
        payment_id,
    )
    return Decimal(value)


async def refunded_amount(db: Executor, payment_id: uuid.UUID) -> Decimal:
    """What was refunded of a payment (succeeded refunds only)."""
    value = await db.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM control.refunds"
        " WHERE payment_id = $1 AND status = 'succeeded'",
        payment_id,
    )
    return Decimal(value)


async def insert_refund(
    db: Executor,
    *,
    payment_id: uuid.UUID,
    amount: Decimal,
    currency: str,
    request_key: str,
    reason: str,
    requested_by: str,
    receipt: dict[str, Any] | None,
) -> asyncpg.Record:
    """A new refund with a fresh idempotence key (status ``new``: not yet sent to YooKassa)."""
    row = await db.fetchrow(
        "INSERT INTO control.refunds (id, payment_id, amount, currency, request_key,"
        " idempotence_key, reason, requested_by, receipt)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        uuid.uuid4(),
        payment_id,
        amount,
        currency,
        request_key,
        uuid.uuid4(),
        reason,
        requested_by,
        receipt,
    )
    assert row is not None
    return row


async def store_provider_result(
    db: Executor, refund_id: uuid.UUID, *, provider_refund_id: str, status: str
) -> None:
    """What YooKassa answered to the create call (a notification may have applied it already)."""
    await db.execute(
        "UPDATE control.refunds SET provider_refund_id = $2,"
        " status = CASE WHEN status = 'new' THEN $3 ELSE status END,"
        " last_error = NULL, updated_at = now()"
        " WHERE id = $1 AND (provider_refund_id IS NULL OR provider_refund_id = $2)",
        refund_id,
        provider_refund_id,
        status,
    )


async def store_error(db: Executor, refund_id: uuid.UUID, *, error: str) -> None:
    """Why the create call failed; the row stays ``new`` so a retry resends its key."""
    await db.execute(
        "UPDATE control.refunds SET last_error = $2, updated_at = now() WHERE id = $1",
        refund_id,
        error[:2000],
    )


async def mark_canceled(db: Executor, refund_id: uuid.UUID, *, error: str) -> None:
    """YooKassa refused the refund: nothing was refunded, its amount is free again."""
    await db.execute(
        "UPDATE control.refunds SET status = 'canceled', last_error = $2, updated_at = now()"
        " WHERE id = $1 AND applied_at IS NULL",
        refund_id,
        error[:2000],
    )


async def lock_by_provider_id(
    conn: asyncpg.Connection, provider_refund_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM control.refunds WHERE provider_refund_id = $1 FOR UPDATE",
        provider_refund_id,
    )


async def lock_unanswered(
    conn: asyncpg.Connection, payment_id: uuid.UUID, amount: Decimal
) -> list[asyncpg.Record]:
    """Refunds of this payment and amount whose create call never got an answer (the notification
    can arrive before the answer is stored), oldest first; at most two: more than one is ambiguous."""
    return await conn.fetch(
        "SELECT * FROM control.refunds WHERE payment_id = $1 AND amount = $2"
        " AND provider_refund_id IS NULL AND status = 'new'"
        " ORDER BY created_at LIMIT 2 FOR UPDATE",
        payment_id,
        amount,
    )


async def find_by_provider_id(db: Executor, provider_refund_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT * FROM control.refunds WHERE provider_refund_id = $1", provider_refund_id
    )


async def get(db: Executor, refund_id: uuid.UUID) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM control.refunds WHERE id = $1", refund_id)


async def list_for_payment(db: Executor, payment_id: uuid.UUID) -> list[asyncpg.Record]:
    """A payment's refunds, oldest first."""
    return await db.fetch(
        "SELECT * FROM control.refunds WHERE payment_id = $1 ORDER BY created_at, id", payment_id
    )


async def mark_applied(
    conn: asyncpg.Connection,
    refund_id: uuid.UUID,
    *,
    provider_refund_id: str,
    effect: str,
    now: datetime,
) -> None:
    """The refund succeeded and its effect commits with this transaction (set once)."""
    await conn.execute(
        "UPDATE control.refunds SET status = 'succeeded', provider_refund_id = $2, effect = $3,"
        " applied_at = $4, updated_at = now() WHERE id = $1 AND applied_at IS NULL",
        refund_id,
        provider_refund_id,
        effect,
        now,
    )


async def take_back_period(
    conn: asyncpg.Connection, subscription_id: int, *, period_end: datetime
) -> asyncpg.Record:
    """The refunded period is removed: the subscription now ends at ``period_end`` (still ahead)."""
    row = await conn.fetchrow(
        "UPDATE control.subscriptions SET current_period_end = $2, reminders_sent = '{}',"
        " updated_at = now() WHERE id = $1 RETURNING *",
        subscription_id,
        period_end,
    )
    assert row is not None
    return row


async def end_subscription(
    conn: asyncpg.Connection, subscription_id: int, *, now: datetime
) -> asyncpg.Record:
    """The refunded period was the current one: the subscription ends now, suspended (retention
    counts from ``now``, as for non-payment) and without auto-renewal."""
    row = await conn.fetchrow(
        "UPDATE control.subscriptions SET status = 'expired', suspended_at = $2,"
        " current_period_end = greatest($2, current_period_start + interval '1 second'),"
        " auto_renew = false, reminders_sent = '{}', updated_at = now()"
        " WHERE id = $1 RETURNING *",
        subscription_id,
        now,
    )
    assert row is not None
    return row


async def count_unfinished(db: Executor, *, older_than_s: float = 600.0) -> int:
    """Refunds YooKassa never answered (``new``) for longer than ``older_than_s``: their amount stays
    reserved until the command or request is run again with the same key."""
    value = await db.fetchval(
        "SELECT count(*) FROM control.refunds WHERE status = 'new'"
        " AND created_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(value)
