"""SQL for reports."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def summary_rows(
    conn: asyncpg.Connection,
    *,
    starts_from: datetime,
    starts_before: datetime,
    status: str | None,
    service_id: int | None,
    staff_id: int | None,
) -> list[asyncpg.Record]:
    """Counts per (status), (service), (staff) and the total, in one pass (GROUPING SETS)."""
    return await conn.fetch(
        """
        SELECT b.status, sv.name AS service_name, st.name AS staff_name,
               GROUPING(b.status, sv.name, st.name) AS level,
               count(*) AS n,
               coalesce(sum(b.price) FILTER (WHERE b.status = 'done'), 0) AS revenue
        FROM bookings b
        JOIN services sv ON sv.id = b.service_id
        JOIN staff st ON st.id = b.staff_id
        WHERE b.starts_at >= $1 AND b.starts_at < $2
          AND ($3::text IS NULL OR b.status = $3)
          AND ($4::bigint IS NULL OR b.service_id = $4)
          AND ($5::bigint IS NULL OR b.staff_id = $5)
        GROUP BY GROUPING SETS ((b.status), (sv.name), (st.name), ())
        """,
        starts_from,
        starts_before,
        status,
        service_id,
        staff_id,
    )
