"""SQL for the public holiday calendar's settings: the country, and the holidays opened anyway."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


async def set_country(conn: asyncpg.Connection, country: str | None, now: datetime) -> None:
    await conn.execute("UPDATE settings SET holiday_country = $1, updated_at = $2", country, now)


async def set_opened(conn: asyncpg.Connection, day: date, opened: bool, now: datetime) -> None:
    """Add ``day`` to the opened holidays (or take it out), in one statement: two owners tapping
    at once both count. Days in the past are dropped on the way."""
    await conn.execute(
        """
        UPDATE settings SET holidays_opened = array(
            SELECT DISTINCT d FROM unnest(holidays_opened || $1::date) AS d
            WHERE d >= $3::date - 1 AND (d <> $1 OR $2)
            ORDER BY d), updated_at = $4
        """,
        day,
        opened,
        now.date(),
        now,
    )
