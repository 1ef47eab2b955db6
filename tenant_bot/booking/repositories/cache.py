"""SQL for the catalogue cache: everything but bookings that decides availability, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from tenant_bot.booking.models import BusinessSettings, Service, Staff
from tenant_bot.booking.repositories.catalogue import service_from_row, settings_from_row


@dataclass(frozen=True, slots=True)
class CatalogueRows:
    """The raw catalogue of a tenant for a window of days."""

    version: int
    settings: BusinessSettings
    services: list[Service]  # every service, in the owner's order
    staff: list[Staff]  # every staff member with the services they provide, in the owner's order
    hours: list[tuple[int, int, int, int]]  # staff_id, weekday, start_minute, end_minute
    exceptions: list[tuple[int | None, date, int | None, int | None]]
    blocks: list[tuple[int | None, datetime, datetime]]


async def catalogue_version(conn: asyncpg.Connection) -> int:
    """The version every change of the catalogue moves (triggers, tenant migration 0002)."""
    return await conn.fetchval("SELECT catalogue_version FROM settings")


async def load_catalogue(
    conn: asyncpg.Connection,
    *,
    day_from: date,
    day_to: date,
    range_start: datetime,
    range_end: datetime,
) -> CatalogueRows:
    """The catalogue with its version (one statement, so one snapshot); exceptions and blocks only
    within the window. Services and staff come in the order of ``catalogue.list_services`` and
    ``catalogue.list_staff``."""
    row = await conn.fetchrow(
        """
        SELECT
            (SELECT x FROM settings x) AS settings,
            (SELECT catalogue_version FROM settings) AS version,
            array(SELECT sv FROM services sv ORDER BY sv.sort_order, sv.name, sv.id) AS services,
            array(SELECT row(s.id, s.name, s.description, s.telegram_user_id, s.active,
                             s.sort_order)
                  FROM staff s ORDER BY s.sort_order, s.name, s.id) AS staff,
            array(SELECT row(ss.staff_id, ss.service_id) FROM staff_services ss
                  ORDER BY ss.staff_id, ss.service_id) AS links,
            array(SELECT row(w.staff_id, w.weekday::int, w.start_minute, w.end_minute)
                  FROM working_hours w) AS hours,
            array(SELECT row(e.staff_id, e.day, e.start_minute, e.end_minute)
                  FROM date_exceptions e WHERE e.day BETWEEN $1 AND $2) AS exceptions,
            array(SELECT row(b.staff_id, lower(b.period), upper(b.period))
                  FROM blocked_periods b WHERE b.period && tstzrange($3, $4)) AS blocks
        """,
        day_from,
        day_to,
        range_start,
        range_end,
    )
    links: dict[int, list[int]] = {}
    for staff_id, service_id in row["links"]:
        links.setdefault(staff_id, []).append(service_id)
    return CatalogueRows(
        version=row["version"],
        settings=settings_from_row(row["settings"]),
        services=[service_from_row(s) for s in row["services"]],
        staff=[
            Staff(
                id=sid,
                name=name,
                description=description,
                telegram_user_id=telegram_user_id,
                active=active,
                sort_order=sort_order,
                service_ids=tuple(links.get(sid, ())),
            )
            for sid, name, description, telegram_user_id, active, sort_order in row["staff"]
        ],
        hours=[tuple(h) for h in row["hours"]],
        exceptions=[tuple(e) for e in row["exceptions"]],
        blocks=[tuple(b) for b in row["blocks"]],
    )
