"""SQL for closures: one blocked period by id (the rest reuses the availability and booking SQL)."""

from __future__ import annotations

import asyncpg

from tenant_bot.booking.models import BlockedPeriod


async def get_block(conn: asyncpg.Connection, block_id: int) -> BlockedPeriod | None:
    row = await conn.fetchrow("SELECT * FROM blocked_periods WHERE id = $1", block_id)
    if row is None:
        return None
    return BlockedPeriod(
        id=row["id"],
        staff_id=row["staff_id"],
        starts_at=row["period"].lower,
        ends_at=row["period"].upper,
        reason=row["reason"],
    )
