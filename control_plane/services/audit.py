"""The audit log: who did what, when, through which request."""

from __future__ import annotations

import asyncpg

from fleet.repositories.admin_views import AdminViews


class AuditService:
    """Reads the audit log, newest first."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[asyncpg.Record]:
        return await AdminViews(self._pool).audit_log(
            actor=actor, action=action, target=target, before_id=before_id, limit=limit
        )
