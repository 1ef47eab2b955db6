"""Payments as admins see them (read only; billing creates and applies them)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from fleet.errors import NotFoundError
from fleet.repositories.payments import PaymentReadRepository
from fleet.repositories.tenants import TenantRepository


class PaymentReadService:
    """Lists and shows payments."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(
        self,
        *,
        tenant: str | None = None,
        status: str | None = None,
        plan_code: str | None = None,
        before: tuple[datetime, UUID] | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        tenant_id = None
        if tenant is not None:
            row = await TenantRepository(self._pool).get(tenant)
            if row is None:
                return []
            tenant_id = row.id
        return await PaymentReadRepository(self._pool).list(
            tenant_id=tenant_id, status=status, plan_code=plan_code, before=before, limit=limit
        )

    async def get(self, payment_id: UUID) -> asyncpg.Record:
        payment = await PaymentReadRepository(self._pool).get(payment_id)
        if payment is None:
            raise NotFoundError(f"payment {payment_id} does not exist")
        return payment
