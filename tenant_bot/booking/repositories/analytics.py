"""SQL for the owner's statistics: everything counted in the database, over a UTC range."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def totals(conn: asyncpg.Connection, start: datetime, before: datetime) -> asyncpg.Record:
    """Bookings by outcome and revenue (prices of visits that happened, deposits kept from the
    others) in one pass."""
    return await conn.fetchrow(
        """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE status <> 'cancelled') AS booked,
               count(*) FILTER (WHERE status = 'done') AS done,
               count(*) FILTER (WHERE status = 'no_show') AS no_show,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
               coalesce(sum(price) FILTER (WHERE status = 'done'), 0) AS revenue,
               coalesce(sum(price) FILTER (WHERE status IN ('pending', 'confirmed')), 0)
                   AS expected,
               -- deposits kept from no-shows and late cancellations (tenant migration 0020)
               coalesce(sum(paid_amount - coalesce(refund_due, 0))
                        FILTER (WHERE status IN ('no_show', 'cancelled')
                                AND paid_amount IS NOT NULL), 0) AS kept
        FROM bookings
        WHERE starts_at >= $1 AND starts_at < $2
        """,
        start,
        before,
    )


async def customers(conn: asyncpg.Connection, start: datetime, before: datetime) -> asyncpg.Record:
    """Customers with a booking that counts in the range, and how many had none before it."""
    return await conn.fetchrow(
        """
        WITH seen AS (
            SELECT DISTINCT customer_id FROM bookings
            WHERE starts_at >= $1 AND starts_at < $2 AND status <> 'cancelled'
        )
        SELECT count(*) AS customers,
               count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM bookings p
                   WHERE p.customer_id = seen.customer_id AND p.starts_at < $1
                     AND p.status <> 'cancelled')) AS new
        FROM seen
        """,
        start,
        before,
    )


async def top(
    conn: asyncpg.Connection, start: datetime, before: datetime, *, by: str, limit: int
) -> list[asyncpg.Record]:
    """Services (``by`` = ``service``) or staff (``staff``) by bookings that count, then revenue."""
    table, column = {"service": ("services", "service_id"), "staff": ("staff", "staff_id")}[by]
    return await conn.fetch(
        f"""
        SELECT t.name, count(*) AS n,
               coalesce(sum(b.price) FILTER (WHERE b.status = 'done'), 0) AS revenue
        FROM bookings b JOIN {table} t ON t.id = b.{column}
        WHERE b.starts_at >= $1 AND b.starts_at < $2 AND b.status <> 'cancelled'
        GROUP BY t.id, t.name
        ORDER BY n DESC, revenue DESC, t.name
        LIMIT $3
        """,
        start,
        before,
        limit,
    )


async def hours(
    conn: asyncpg.Connection, start: datetime, before: datetime, zone: str
) -> list[asyncpg.Record]:
    """Bookings that count per local starting hour (0-23) in the tenant's time zone."""
    return await conn.fetch(
        """
        SELECT extract(hour FROM starts_at AT TIME ZONE $3)::int AS hour, count(*) AS n
        FROM bookings
        WHERE starts_at >= $1 AND starts_at < $2 AND status <> 'cancelled'
        GROUP BY 1 ORDER BY 1
        """,
        start,
        before,
        zone,
    )
