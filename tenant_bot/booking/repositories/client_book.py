"""SQL for the client book: customers found by name or phone, their figures, edits, the walk-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from tenant_bot.booking.models import Customer
from tenant_bot.booking.repositories.customers import customer_from_row


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer with what only the owner sees."""

    customer: Customer
    notes: str
    blocked: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts over a customer's bookings."""

    visits: int
    no_shows: int
    cancellations: int
    upcoming: int
    spent: Decimal
    last_visit: datetime | None


def _row(row: asyncpg.Record) -> CustomerRow:
    return CustomerRow(customer_from_row(row), row["notes"], row["blocked"], row["created_at"])


async def search(
    conn: asyncpg.Connection, *, name: str | None, phone_digits: str | None, limit: int
) -> list[CustomerRow]:
    """Customers whose name contains ``name`` (any case) or whose phone contains
    ``phone_digits``; the walk-in customer is not one of them. Most recently seen first."""
    rows = await conn.fetch(
        """
        SELECT * FROM customers
        WHERE NOT walk_in
          AND (($1::text IS NOT NULL AND strpos(lower(name), lower($1)) > 0)
               OR ($2::text IS NOT NULL AND strpos(phone, $2) > 0))
        ORDER BY updated_at DESC, id DESC
        LIMIT $3
        """,
        name,
        phone_digits,
        limit,
    )
    return [_row(r) for r in rows]


async def by_phone(conn: asyncpg.Connection, phone: str) -> Customer | None:
    """The most recently seen customer with this E.164 phone."""
    row = await conn.fetchrow(
        "SELECT * FROM customers WHERE phone = $1 AND NOT walk_in"
        " ORDER BY updated_at DESC, id DESC LIMIT 1",
        phone,
    )
    return customer_from_row(row) if row else None


async def insert_offline(
    conn: asyncpg.Connection, *, name: str, phone: str | None, now: datetime
) -> Customer:
    """A customer without Telegram (booked by phone or at the door)."""
    row = await conn.fetchrow(
        "INSERT INTO customers (name, phone, created_at, updated_at) VALUES ($1, $2, $3, $3)"
        " RETURNING *",
        name,
        phone,
        now,
    )
    return customer_from_row(row)


async def walk_in(conn: asyncpg.Connection, *, name: str, now: datetime) -> Customer:
    """The one walk-in customer, created on first use (two first uses make one)."""
    row = await conn.fetchrow(
        """
        INSERT INTO customers (name, walk_in, created_at, updated_at) VALUES ($1, true, $2, $2)
        ON CONFLICT (walk_in) WHERE walk_in DO UPDATE SET updated_at = customers.updated_at
        RETURNING *
        """,
        name,
        now,
    )
    return customer_from_row(row)


async def get(conn: asyncpg.Connection, customer_id: int) -> CustomerRow | None:
    row = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", customer_id)
    return _row(row) if row else None


async def figures(conn: asyncpg.Connection, customer_id: int, now: datetime) -> Figures:
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE status = 'done') AS visits,
               count(*) FILTER (WHERE status = 'no_show') AS no_shows,
               count(*) FILTER (WHERE status = 'cancelled') AS cancellations,
               count(*) FILTER (WHERE status IN ('pending', 'confirmed') AND ends_at > $2)
                   AS upcoming,
               coalesce(sum(price) FILTER (WHERE status = 'done'), 0) AS spent,
               max(starts_at) FILTER (WHERE status = 'done') AS last_visit
        FROM bookings WHERE customer_id = $1
        """,
        customer_id,
        now,
    )
    return Figures(
        visits=row["visits"],
        no_shows=row["no_shows"],
        cancellations=row["cancellations"],
        upcoming=row["upcoming"],
        spent=row["spent"],
        last_visit=row["last_visit"],
    )


async def update(
    conn: asyncpg.Connection,
    customer_id: int,
    *,
    name: str | None,
    phone: str | None,
    notes: str | None,
    blocked: bool | None,
    now: datetime,
) -> bool:
    """Change the given fields (None keeps a field); False if there is no such customer."""
    status = await conn.execute(
        """
        UPDATE customers SET name = coalesce($2, name), phone = coalesce($3, phone),
               notes = coalesce($4, notes), blocked = coalesce($5, blocked), updated_at = $6
        WHERE id = $1
        """,
        customer_id,
        name,
        phone,
        notes,
        blocked,
        now,
    )
    return status != "UPDATE 0"
