"""SQL over ``control.audit_log``: who did what, when."""

from __future__ import annotations

from typing import Any

import asyncpg


async def record(
    db: asyncpg.Connection | asyncpg.Pool,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    """Append one audit entry (inside the caller's transaction when given a connection)."""
    await db.execute(
        "INSERT INTO control.audit_log (actor, action, target, details, request_id)"
        " VALUES ($1, $2, $3, $4, $5)",
        actor,
        action,
        target,
        details or {},
        request_id,
    )
