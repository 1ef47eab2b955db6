"""SQL over ``control.payments``, the write side (checkouts, provider results, applying).

The read side (pages for the API and CLI) is :mod:`fleet.repositories.payments`.

A payment row is inserted with OUR idempotence key and committed before YooKassa is called; the
provider's id and confirmation URL are stored after. ``applied_at`` is set once, in the transaction
that extends the subscription, under ``SELECT ... FOR UPDATE``: that is what makes replayed
notifications no-ops.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from fleet.db import Executor


async def insert_payment(
    db: Executor,
    *,
    tenant_id: int,
    plan_code: str,
    amount: Decimal,
    currency: str,
    description: str,
    purpose: str,
    payer_telegram_id: int | None,
    save_payment_method: bool,
    metadata: dict[str, Any] | None = None,
    autopay_consent: dict[str, Any] | None = None,
) -> asyncpg.Record:
    """A new payment with a fresh idempotence key (status ``new``: not yet sent to YooKassa)."""
    row = await db.fetchrow(
        "INSERT INTO control.payments (id, tenant_id, plan_code, amount, currency, description,"
        " purpose, payer_telegram_id, save_payment_method, metadata, idempotence_key,"
        " autopay_consent)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
        uuid.uuid4(),
        tenant_id,
        plan_code,
        amount,
        currency,
        description,
        purpose,
        payer_telegram_id,
        save_payment_method,
        metadata or {},
        uuid.uuid4(),
        autopay_consent,
    )
    assert row is not None
    return row


async def insert_auto_renewal(
    db: Executor,
    *,
    tenant_id: int,
    plan_code: str,
    amount: Decimal,
    currency: str,
    description: str,
    renews_period_end: datetime,
    metadata: dict[str, Any] | None = None,
) -> asyncpg.Record | None:
    """The automatic charge of one period, or the one already there if it never reached
    YooKassa (``new``: resent with the same key); None when the period was already charged."""
    row = await db.fetchrow(
        "INSERT INTO control.payments (id, tenant_id, plan_code, amount, currency, description,"
        " purpose, renews_period_end, idempotence_key, metadata)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'auto_renewal', $7, $8, $9)"
        " ON CONFLICT (tenant_id, renews_period_end) WHERE purpose = 'auto_renewal' DO NOTHING"
        " RETURNING *",
        uuid.uuid4(),
        tenant_id,
        plan_code,
        amount,
        currency,
        description,
        renews_period_end,
        uuid.uuid4(),
        metadata or {},
    )
    if row is not None:
        return row
    return await db.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND purpose = 'auto_renewal'"
        " AND renews_period_end = $2 AND status = 'new'",
        tenant_id,
        renews_period_end,
    )


async def lock_payment(conn: asyncpg.Connection, payment_id: uuid.UUID) -> asyncpg.Record | None:
    """The row, locked until the caller's transaction ends (serialises concurrent notifications)."""
    return await conn.fetchrow(
        "SELECT * FROM control.payments WHERE id = $1 FOR UPDATE", payment_id
    )


async def find_by_provider_id(db: Executor, provider_payment_id: str) -> asyncpg.Record | None:
    """Our row of a provider payment (to skip settled replays before asking YooKassa)."""
    return await db.fetchrow(
        "SELECT * FROM control.payments WHERE provider_payment_id = $1", provider_payment_id
    )


async def find_open_checkout(
    db: Executor,
    *,
    tenant_id: int,
    plan_code: str,
    save_payment_method: bool,
    created_after: datetime,
) -> asyncpg.Record | None:
    """The newest unpaid checkout of a tenant for a plan, created after ``created_after``."""
    return await db.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND plan_code = $2"
        " AND status IN ('new', 'pending') AND purpose IN ('purchase', 'renewal')"
        " AND save_payment_method = $3 AND created_at > $4"
        " ORDER BY created_at DESC LIMIT 1",
        tenant_id,
        plan_code,
        save_payment_method,
        created_after,
    )


async def store_provider_result(
    db: Executor,
    payment_id: uuid.UUID,
    *,
    provider_payment_id: str,
    status: str,
    confirmation_url: str | None,
) -> asyncpg.Record | None:
    """Record what YooKassa answered to the create call. A notification may already have moved the
    row further (applied or canceled): then only the provider id is filled in."""
    return await db.fetchrow(
        "UPDATE control.payments SET provider_payment_id = $2,"
        " status = CASE WHEN status IN ('new', 'pending') AND applied_at IS NULL THEN $3"
        "          ELSE status END,"
        " confirmation_url = coalesce($4, confirmation_url), last_error = NULL, updated_at = now()"
        " WHERE id = $1 AND (provider_payment_id IS NULL OR provider_payment_id = $2) RETURNING *",
        payment_id,
        provider_payment_id,
        status,
        confirmation_url,
    )


async def store_provider_error(db: Executor, payment_id: uuid.UUID, *, error: str) -> None:
    """Note why the create call failed; the row stays ``new`` so a retry reuses its key."""
    await db.execute(
        "UPDATE control.payments SET last_error = $2, updated_at = now() WHERE id = $1",
        payment_id,
        error[:2000],
    )


async def mark_applied(
    conn: asyncpg.Connection,
    payment_id: uuid.UUID,
    *,
    provider_payment_id: str,
    now: datetime,
) -> None:
    """The payment succeeded and its effect commits with this transaction (set once)."""
    await conn.execute(
        "UPDATE control.payments SET status = 'succeeded', provider_payment_id = $2,"
        " paid_at = coalesce(paid_at, $3), applied_at = $3, updated_at = now()"
        " WHERE id = $1 AND applied_at IS NULL",
        payment_id,
        provider_payment_id,
        now,
    )


async def mark_canceled(
    db: Executor,
    payment_id: uuid.UUID,
    *,
    reason: str,
    provider_payment_id: str | None = None,
) -> bool:
    """Cancel an unpaid payment; False if it was already canceled or succeeded."""
    status = await db.execute(
        "UPDATE control.payments SET status = 'canceled', cancellation_reason = $2,"
        " provider_payment_id = coalesce(provider_payment_id, $3), updated_at = now()"
        " WHERE id = $1 AND status NOT IN ('canceled', 'succeeded') AND applied_at IS NULL",
        payment_id,
        reason[:500],
        provider_payment_id,
    )
    return status.endswith(" 1")


async def cancel_open_payments(conn: Executor, tenant_id: int, *, reason: str) -> None:
    """Cancel (in our records) a tenant's checkouts that were never paid."""
    await conn.execute(
        "UPDATE control.payments SET status = 'canceled', cancellation_reason = $2,"
        " updated_at = now() WHERE tenant_id = $1 AND status IN ('new', 'pending')"
        " AND applied_at IS NULL",
        tenant_id,
        reason,
    )


async def find_open_upgrade(
    db: Executor, *, tenant_id: int, plan_code: str, created_after: datetime
) -> asyncpg.Record | None:
    """The newest unpaid upgrade checkout of a tenant to ``plan_code`` (reused on a second tap)."""
    return await db.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND plan_code = $2"
        " AND purpose = 'upgrade' AND status IN ('new', 'pending') AND created_at > $3"
        " ORDER BY created_at DESC LIMIT 1",
        tenant_id,
        plan_code,
        created_after,
    )


async def last_receipt_contact(db: Executor, tenant_id: int) -> dict[str, str]:
    """The receipt contact (email / phone) the owner gave with their newest payment that had one."""
    contact = await db.fetchval(
        "SELECT metadata -> 'receipt' FROM control.payments WHERE tenant_id = $1"
        " AND metadata -> 'receipt' <> '{}'::jsonb ORDER BY created_at DESC LIMIT 1",
        tenant_id,
    )
    return dict(contact or {})


async def auto_renewal_failed(db: Executor, tenant_id: int, *, renews_period_end: datetime) -> bool:
    """Whether the automatic charge of the period ending ``renews_period_end`` was refused."""
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM control.payments WHERE tenant_id = $1"
            " AND purpose = 'auto_renewal' AND renews_period_end = $2 AND status = 'canceled')",
            tenant_id,
            renews_period_end,
        )
    )
