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
