"""SQL over ``control.plans``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from fleet.db import Executor
from fleet.errors import ConflictError


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
        translations: dict[str, dict[str, str | None]] | None = None,
    ) -> asyncpg.Record:
        try:
            row = await self._db.fetchrow(
                "INSERT INTO control.plans (code, name, description, price, currency,"
                " period_days, max_staff, active, translations)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                code,
                name,
                description,
                price,
                currency,
                period_days,
                max_staff,
                active,
                translations or {},
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

    async def update(self, code: str, **columns: Any) -> asyncpg.Record | None:
        """Set ``columns`` (and ``updated_at``); column names come from code, never from input."""
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
        return await self._db.fetchrow(
            f"UPDATE control.plans SET {assignments}, updated_at = now() WHERE code = $1"
            " RETURNING *",
            code,
            *columns.values(),
        )

    async def usage(self, code: str) -> dict[str, int]:
        """How many tenants (deleted ones too), subscriptions and payments refer to the plan."""
        row = await self._db.fetchrow(
            "SELECT (SELECT count(*) FROM control.tenants WHERE plan_code = $1) AS tenants,"
            " (SELECT count(*) FROM control.subscriptions WHERE plan_code = $1) AS subscriptions,"
            " (SELECT count(*) FROM control.payments WHERE plan_code = $1) AS payments",
            code,
        )
        assert row is not None
        return dict(row)

    async def delete(self, code: str) -> bool:
        """Delete a plan; one still referenced is a :class:`ConflictError`."""
        try:
            status = await self._db.execute("DELETE FROM control.plans WHERE code = $1", code)
        except asyncpg.ForeignKeyViolationError as exc:
            raise ConflictError(
                "code",
                f"plan {code!r} is referenced by tenants, subscriptions or payments; "
                "set active=false to stop selling it instead",
            ) from exc
        return status.endswith(" 1")
