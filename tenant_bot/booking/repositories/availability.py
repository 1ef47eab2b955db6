"""SQL for working hours, date exceptions, blocked periods, and the availability snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from tenant_bot.booking.models import (
    BlockedPeriod,
    BusinessSettings,
    DateException,
    Service,
    WorkInterval,
)
from tenant_bot.booking.repositories.catalogue import service_from_row, settings_from_row


async def get_weekly_hours(
    conn: asyncpg.Connection, staff_id: int
) -> dict[int, list[WorkInterval]]:
    rows = await conn.fetch(
        "SELECT weekday, start_minute, end_minute FROM working_hours WHERE staff_id = $1"
        " ORDER BY weekday, start_minute",
        staff_id,
    )
    hours: dict[int, list[WorkInterval]] = {}
    for r in rows:
        hours.setdefault(r["weekday"], []).append(WorkInterval(r["start_minute"], r["end_minute"]))
    return hours


async def replace_day_hours(
    conn: asyncpg.Connection, staff_id: int, weekday: int, intervals: Sequence[WorkInterval]
) -> None:
    await conn.execute(
        "DELETE FROM working_hours WHERE staff_id = $1 AND weekday = $2", staff_id, weekday
    )
    await conn.executemany(
        "INSERT INTO working_hours (staff_id, weekday, start_minute, end_minute)"
        " VALUES ($1, $2, $3, $4)",
        [(staff_id, weekday, i.start_minute, i.end_minute) for i in intervals],
    )


async def replace_exception(
    conn: asyncpg.Connection,
    *,
    staff_id: int | None,
    day: date,
    intervals: Sequence[WorkInterval],
    note: str,
) -> None:
    await clear_exception(conn, staff_id=staff_id, day=day)
    rows: list[tuple[int | None, date, int | None, int | None, str]] = [
        (staff_id, day, i.start_minute, i.end_minute, note) for i in intervals
    ] or [(staff_id, day, None, None, note)]
    await conn.executemany(
        "INSERT INTO date_exceptions (staff_id, day, start_minute, end_minute, note)"
        " VALUES ($1, $2, $3, $4, $5)",
        rows,
    )


async def clear_exception(conn: asyncpg.Connection, *, staff_id: int | None, day: date) -> int:
    status = await conn.execute(
        "DELETE FROM date_exceptions WHERE day = $1 AND staff_id IS NOT DISTINCT FROM $2",
        day,
        staff_id,
    )
    return int(status.split()[-1])


async def list_exceptions(
    conn: asyncpg.Connection, day_from: date, day_to: date
) -> list[DateException]:
    rows = await conn.fetch(
        "SELECT staff_id, day, start_minute, end_minute, note FROM date_exceptions"
        " WHERE day BETWEEN $1 AND $2 ORDER BY day, staff_id NULLS FIRST, start_minute",
        day_from,
        day_to,
    )
    grouped: dict[tuple[int | None, date], list[asyncpg.Record]] = {}
    for r in rows:
        grouped.setdefault((r["staff_id"], r["day"]), []).append(r)
    return [
        DateException(
            staff_id=staff_id,
            day=day,
            intervals=tuple(
                WorkInterval(r["start_minute"], r["end_minute"])
                for r in group
                if r["start_minute"] is not None
            ),
            note=group[0]["note"],
        )
        for (staff_id, day), group in grouped.items()
    ]


def _block(row: asyncpg.Record) -> BlockedPeriod:
    return BlockedPeriod(
        id=row["id"],
        staff_id=row["staff_id"],
        starts_at=row["period"].lower,
        ends_at=row["period"].upper,
        reason=row["reason"],
    )


async def insert_block(
    conn: asyncpg.Connection,
    *,
    staff_id: int | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    now: datetime,
) -> BlockedPeriod:
    row = await conn.fetchrow(
        "INSERT INTO blocked_periods (staff_id, period, reason, created_at)"
        " VALUES ($1, tstzrange($2, $3), $4, $5) RETURNING *",
        staff_id,
        starts_at,
        ends_at,
        reason,
        now,
    )
    return _block(row)


async def delete_block(conn: asyncpg.Connection, block_id: int) -> bool:
    return await conn.execute("DELETE FROM blocked_periods WHERE id = $1", block_id) != "DELETE 0"


async def list_blocks(
    conn: asyncpg.Connection, starts_at: datetime, ends_at: datetime
) -> list[BlockedPeriod]:
    rows = await conn.fetch(
        "SELECT * FROM blocked_periods WHERE period && tstzrange($1, $2)"
        " ORDER BY lower(period), id",
        starts_at,
        ends_at,
    )
    return [_block(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the slot engine needs for one service over a time range, read in one round trip."""

    settings: BusinessSettings
    service: Service | None
    staff_ids: tuple[int, ...]  # active staff doing the service, in display order
    hours: list[tuple[int, int, int, int]]  # staff_id, weekday, start_minute, end_minute
    exceptions: list[tuple[int | None, date, int | None, int | None]]
    blocks: list[tuple[int | None, datetime, datetime]]
    busy: list[tuple[int, datetime, datetime, int, datetime]]  # staff, occupied, service, start
    load: dict[int, int] | None  # staff_id -> active bookings on the slot's local day


async def load_snapshot(
    conn: asyncpg.Connection,
    *,
    service_id: int,
    staff_id: int | None,
    day_from: date,
    day_to: date,
    range_start: datetime,
    range_end: datetime,
    exclude_booking_id: int | None = None,
    slot_start: datetime | None = None,
) -> Snapshot:
    """BusinessSettings, service, candidate staff and everything that constrains them.

    Listing reads the whole range. Booking (``slot_start`` given) reads only what can clash with that
    one slot, plus each staff member's load that local day.
    """
    row = await conn.fetchrow(
        """
        WITH st AS (
            SELECT s.id, s.sort_order, s.name FROM staff s
            JOIN staff_services ss ON ss.staff_id = s.id AND ss.service_id = $1
            WHERE s.active AND ($2::bigint IS NULL OR s.id = $2)
        ), rng AS (
            SELECT CASE WHEN $8::timestamptz IS NULL THEN tstzrange($5, $6)
                        ELSE tstzrange($8 - make_interval(mins => x.buffer_before_minutes),
                                       $8 + make_interval(mins => sv.duration_minutes
                                                                  + x.buffer_after_minutes))
                   END AS busy,
                   date_trunc('day', $8 AT TIME ZONE x.time_zone) AT TIME ZONE x.time_zone
                       AS day_start,
                   (date_trunc('day', $8 AT TIME ZONE x.time_zone) + interval '1 day')
                       AT TIME ZONE x.time_zone AS day_end
            FROM settings x LEFT JOIN services sv ON sv.id = $1
        )
        SELECT
            (SELECT x FROM settings x) AS settings,
            (SELECT sv FROM services sv WHERE sv.id = $1) AS service,
            array(SELECT id FROM st ORDER BY sort_order, name, id) AS staff_ids,
            array(SELECT row(w.staff_id, w.weekday::int, w.start_minute, w.end_minute)
                  FROM working_hours w WHERE w.staff_id IN (SELECT id FROM st)) AS hours,
            array(SELECT row(e.staff_id, e.day, e.start_minute, e.end_minute)
                  FROM date_exceptions e
                  WHERE e.day BETWEEN $3 AND $4
                    AND (e.staff_id IS NULL OR e.staff_id IN (SELECT id FROM st))) AS exceptions,
            array(SELECT row(b.staff_id, lower(b.period), upper(b.period))
                  FROM blocked_periods b, rng
                  WHERE b.period && rng.busy
                    AND (b.staff_id IS NULL OR b.staff_id IN (SELECT id FROM st))) AS blocks,
            array(SELECT row(k.staff_id, lower(k.occupied), upper(k.occupied), k.service_id,
                             k.starts_at)
                  FROM bookings k, rng
                  WHERE k.staff_id IN (SELECT id FROM st)
                    AND k.status IN ('pending', 'confirmed')
                    AND k.occupied && rng.busy
                    AND k.id IS DISTINCT FROM $7) AS busy,
            array(SELECT row(k.staff_id, count(*)::int)
                  FROM bookings k, rng
                  WHERE $8::timestamptz IS NOT NULL AND $2::bigint IS NULL
                    AND k.staff_id IN (SELECT id FROM st)
                    AND k.status IN ('pending', 'confirmed')
                    AND k.starts_at >= rng.day_start AND k.starts_at < rng.day_end
                  GROUP BY k.staff_id) AS load
        """,
        service_id,
        staff_id,
        day_from,
        day_to,
        range_start,
        range_end,
        exclude_booking_id,
        slot_start,
    )
    return Snapshot(
        settings=settings_from_row(row["settings"]),
        service=service_from_row(row["service"]) if row["service"] is not None else None,
        staff_ids=tuple(row["staff_ids"]),
        hours=[tuple(h) for h in row["hours"]],
        exceptions=[tuple(e) for e in row["exceptions"]],
        blocks=[tuple(b) for b in row["blocks"]],
        busy=[tuple(b) for b in row["busy"]],
        load=dict(tuple(x) for x in row["load"]) if slot_start is not None else None,
    )


async def copy_day_hours(
    conn: asyncpg.Connection, staff_id: int, weekday: int, to_weekdays: Sequence[int]
) -> None:
    """Replace the hours of ``to_weekdays`` with those of ``weekday`` (none there: days off)."""
    targets = [day for day in to_weekdays if day != weekday]
    await conn.execute(
        "DELETE FROM working_hours WHERE staff_id = $1 AND weekday = ANY($2::smallint[])",
        staff_id,
        targets,
    )
    await conn.execute(
        "INSERT INTO working_hours (staff_id, weekday, start_minute, end_minute)"
        " SELECT h.staff_id, t.day, h.start_minute, h.end_minute"
        " FROM working_hours h CROSS JOIN unnest($3::smallint[]) AS t(day)"
        " WHERE h.staff_id = $1 AND h.weekday = $2",
        staff_id,
        weekday,
        targets,
    )
