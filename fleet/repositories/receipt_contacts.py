"""SQL over ``control.receipt_contacts``: where a tenant's 54-FZ receipts are sent."""

from __future__ import annotations

import asyncpg

from fleet.db import Executor


async def get(db: Executor, tenant_id: int) -> asyncpg.Record | None:
    """The tenant's receipt contact (``email``, ``phone``), or None if never given."""
    return await db.fetchrow(
        "SELECT email, phone, updated_at FROM control.receipt_contacts WHERE tenant_id = $1",
        tenant_id,
    )


async def put(db: Executor, tenant_id: int, *, email: str | None, phone: str | None) -> None:
    """Set the contact (the new one replaces both fields)."""
    await db.execute(
        "INSERT INTO control.receipt_contacts (tenant_id, email, phone) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id) DO UPDATE SET email = $2, phone = $3, updated_at = now()",
        tenant_id,
        email,
        phone,
    )
