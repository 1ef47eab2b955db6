"""SQL over ``control.plans``."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from fleet.errors import ConflictError

Executor = asyncpg.Connection | asyncpg.Pool


class PlanRepository:
    """Reads and writes plans; takes a connection so callers own the transaction."""

    def __init__(self, db: Executor) -> None:
        self._db = db

    async def get(self, code: str) -> asyncpg.Record | None:
        return await self._db.fetchrow("SELECT * FROM control.plans WHERE code = $1", code)

    async def list(self, *, active_only: bool = True) -> list[asyncpg.Record]:
        """Plans by price, then code."""
        return await self._db.fetch(
            "SELECT * FROM control.plans WHERE active OR NOT $1 ORDER BY price, code", active_only
        )

    async def insert(
        self,
        *,
        code: str,
        name: str,
        price: Decimal,
        period_days: int,
        currency: str = "RUB",
        description: str = "",
        max_staff: int | None = None,
        active: bool = True,
    ) -> asyncpg.Record:
        try:
            row = await self._db.fetchrow(
                "INSERT INTO control.plans"
                " (code, name, description, price, currency, period_days, max_staff, active)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                code,
                name,
                description,
                price,
                currency,
                period_days,
                max_staff,
                active,
            )
        except asyncpg.UniqueViolationError as exc:
            raise ConflictError("code", f"a plan with code {code!r} already exists") from exc
        assert row is not None
        return row

    async def set_active(self, code: str, active: bool) -> asyncpg.Record | None:
        return await self._db.fetchrow(
            "UPDATE control.plans SET active = $2, updated_at = now() WHERE code = $1 RETURNING *",
            code,
            active,
        )
