"""Plans: what buyers can purchase. Shared by the control plane (CRUD) and the sales bot (listing)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.plans import PlanRepository
from schemas.plans import PlanCreate, PlanUpdate

log = logging.getLogger(__name__)


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if not isinstance(v, bool | int | str | dict | None) else v)
        for k, v in changes.items()
    }


class PlanService:
    """Creates, changes and retires plans, auditing every change."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(self, *, active: bool | None = None) -> list[asyncpg.Record]:
        """Plans, cheapest first; ``active`` None lists all of them."""
        plans = await PlanRepository(self._pool).list(active_only=False)
        return [plan for plan in plans if active is None or plan["active"] == active]

    async def get(self, code: str) -> asyncpg.Record:
        plan = await PlanRepository(self._pool).get(code)
        if plan is None:
            raise NotFoundError(f"plan {code!r} does not exist; list plans to see the codes")
        return plan

    async def create(
        self, data: PlanCreate, *, actor: str, request_id: str | None = None
    ) -> asyncpg.Record:
        """Create a plan; a taken code is a :class:`ConflictError`."""
        async with self._pool.acquire() as conn, conn.transaction():
            plan = await PlanRepository(conn).insert(**data.model_dump())
            await audit.record(
                conn,
                actor=actor,
                action="plan.create",
                target=f"plan:{data.code}",
                details=_jsonable(data.model_dump()),
                request_id=request_id,
            )
        log.info("plan created", extra={"plan": data.code, "actor": actor})
        return plan

    async def update(
        self, code: str, data: PlanUpdate, *, actor: str, request_id: str | None = None
    ) -> asyncpg.Record:
        """Change the given fields of a plan. Prices of running subscriptions are not touched:
        a new price applies from the next payment."""
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise ValidationError(
                "body", "give at least one field to change: " + ", ".join(PlanUpdate.model_fields)
            )
        async with self._pool.acquire() as conn, conn.transaction():
            plan = await PlanRepository(conn).update(code, **changes)
            if plan is None:
                raise NotFoundError(f"plan {code!r} does not exist; list plans to see the codes")
            await audit.record(
                conn,
                actor=actor,
                action="plan.update",
                target=f"plan:{code}",
                details=_jsonable(changes),
                request_id=request_id,
            )
        return plan

    async def delete(self, code: str, *, actor: str, request_id: str | None = None) -> None:
        """Delete a plan nobody ever used; a used plan can only be deactivated."""
        async with self._pool.acquire() as conn, conn.transaction():
            repo = PlanRepository(conn)
            if await repo.get(code) is None:
                raise NotFoundError(f"plan {code!r} does not exist; list plans to see the codes")
            usage = await repo.usage(code)
            if any(usage.values()):
                counts = ", ".join(f"{n} {what}" for what, n in usage.items() if n)
                raise ConflictError(
                    "code",
                    f"plan {code!r} is in use ({counts}); set active=false to stop selling it",
                )
            await repo.delete(code)
            await audit.record(
                conn,
                actor=actor,
                action="plan.delete",
                target=f"plan:{code}",
                request_id=request_id,
            )
