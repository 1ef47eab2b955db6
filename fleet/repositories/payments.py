"""SQL over ``control.payments``: the read side (writes belong to :mod:`fleet.billing`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from fleet.db import Executor

_SELECT = (
    "SELECT p.*, t.slug AS tenant_slug FROM control.payments p"
    " LEFT JOIN control.tenants t ON t.id = p.tenant_id"
)


class PaymentReadRepository:
    """Payments with the slug of their tenant, newest first."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def get(self, payment_id: UUID) -> asyncpg.Record | None:
        return await self._db.fetchrow(f"{_SELECT} WHERE p.id = $1", payment_id)

    async def list(
        self,
        *,
        tenant_id: int | None = None,
        status: str | None = None,
        plan_code: str | None = None,
        before: tuple[datetime, UUID] | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        """A page ordered by ``(created_at, id)`` descending; ``before`` is the last row seen."""
        before_at, before_id = before if before is not None else (None, None)
        return await self._db.fetch(
            f"{_SELECT} WHERE ($1::bigint IS NULL OR p.tenant_id = $1)"
            " AND ($2::text IS NULL OR p.status = $2) AND ($3::text IS NULL OR p.plan_code = $3)"
            " AND ($4::timestamptz IS NULL OR (p.created_at, p.id) < ($4, $5::uuid))"
            " ORDER BY p.created_at DESC, p.id DESC LIMIT $6",
            tenant_id,
            status,
            plan_code,
            before_at,
            before_id,
            limit,
        )


# What was refunded of a payment: the refunds YooKassa confirmed (pending or refused ones are not
# money back yet); NULL when nothing was, so the history says nothing about refunds then.
_REFUNDED = (
    "(SELECT sum(r.amount) FROM control.refunds r"
    " WHERE r.payment_id = p.id AND r.status = 'succeeded')"
)


async def history_page(
    db: Executor, *, tenant_id: int, offset: int, limit: int
) -> list[asyncpg.Record]:
    """A tenant's payments as its owner sees them, newest first (``limit`` rows from ``offset``):
    when, how much, what for, how it ended and what was refunded. Checkouts that never reached
    YooKassa (status ``new``) are left out: nothing was asked of the owner."""
    return await db.fetch(
        "SELECT p.id, p.created_at, p.paid_at, p.amount, p.currency, p.status, p.purpose,"
        " p.plan_code, p.cancellation_reason, pl.name AS plan_name,"
        " pl.translations AS plan_translations, "
        + _REFUNDED
        + " AS refunded_amount FROM control.payments p"
        " JOIN control.plans pl ON pl.code = p.plan_code"
        " WHERE p.tenant_id = $1 AND p.status <> 'new'"
        " ORDER BY p.created_at DESC, p.id DESC OFFSET $2 LIMIT $3",
        tenant_id,
        offset,
        limit,
    )
