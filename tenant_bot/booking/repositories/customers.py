"""SQL for customers."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tenant_bot.booking.models import Customer


def customer_from_row(row: asyncpg.Record) -> Customer:
    return Customer(
        id=row["id"],
        telegram_user_id=row["telegram_user_id"],
        name=row["name"],
        phone=row["phone"],
        locale=row["locale"],
    )


async def upsert_customer(
    conn: asyncpg.Connection,
    *,
    telegram_user_id: int,
    name: str | None,
    phone: str | None,
    locale: str | None,
    now: datetime,
) -> Customer:
    """Insert or update by Telegram id; ``None`` fields keep what is stored."""
    row = await conn.fetchrow(
        """
        INSERT INTO customers (telegram_user_id, name, phone, locale, created_at, updated_at)
        VALUES ($1, coalesce($2, ''), $3, $4, $5, $5)
        ON CONFLICT (telegram_user_id) DO UPDATE SET
            name = coalesce($2, customers.name),
            phone = coalesce($3, customers.phone),
            locale = coalesce($4, customers.locale),
            updated_at = $5
        RETURNING *
        """,
        telegram_user_id,
        name,
        phone,
        locale,
        now,
    )
    return customer_from_row(row)


async def get_customer(conn: asyncpg.Connection, customer_id: int) -> Customer | None:
    row = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", customer_id)
    return customer_from_row(row) if row else None


async def get_by_telegram_id(conn: asyncpg.Connection, telegram_user_id: int) -> Customer | None:
    row = await conn.fetchrow(
        "SELECT * FROM customers WHERE telegram_user_id = $1", telegram_user_id
    )
    return customer_from_row(row) if row else None
