"""SQL for settings, services, staff and the staff-service links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tenant_bot.booking.models import BusinessSettings, DepositKind, DepositRule, Service, Staff

SETTINGS_COLUMNS = frozenset(
    {
        "business_name",
        "description",
        "address",
        "phone",
        "map_url",
        "welcome_text",
        "time_zone",
        "default_locale",
        "currency",
        "slot_step_minutes",
        "buffer_before_minutes",
        "buffer_after_minutes",
        "min_notice_minutes",
        "horizon_days",
        "max_active_per_customer",
        "cancel_notice_minutes",
        "reschedule_notice_minutes",
        "confirmation_required",
        "reminder_offsets_minutes",
        "release_unconfirmed_hours",
        "no_show_action",
        "no_show_threshold",
        "holiday_country",
        "holidays_opened",
    }
)
SERVICE_COLUMNS = frozenset(
    {
        "name",
        "description",
        "duration_minutes",
        "price",
        "currency",
        "capacity",
        "active",
        "sort_order",
        "deposit_kind",
        "deposit_value",
    }
)
STAFF_COLUMNS = frozenset({"name", "description", "telegram_user_id", "active", "sort_order"})


def _set_clause(
    changes: Mapping[str, Any], allowed: frozenset[str], first: int
) -> tuple[str, list]:
    # Column names come only from the whitelists above, never from callers' strings unchecked.
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    names = sorted(changes)
    clause = ", ".join(f"{name} = ${first + i}" for i, name in enumerate(names))
    return clause, [changes[name] for name in names]


def settings_from_row(row: asyncpg.Record) -> BusinessSettings:
    """Build :class:`BusinessSettings` from a ``settings`` row."""
    values = {name: row[name] for name in SETTINGS_COLUMNS}
    values["reminder_offsets_minutes"] = tuple(row["reminder_offsets_minutes"])
    values["holidays_opened"] = tuple(row["holidays_opened"])
    values["currency"] = row["currency"].strip()
    return BusinessSettings(updated_at=row["updated_at"], **values)


async def get_settings(conn: asyncpg.Connection) -> BusinessSettings:
    row = await conn.fetchrow("SELECT * FROM settings")
    return settings_from_row(row)


async def update_settings(
    conn: asyncpg.Connection, changes: Mapping[str, Any], now: datetime
) -> BusinessSettings:
    clause, values = _set_clause(changes, SETTINGS_COLUMNS, 2)
    row = await conn.fetchrow(
        f"UPDATE settings SET {clause}, updated_at = $1 RETURNING *", now, *values
    )
    return settings_from_row(row)


def service_from_row(row: asyncpg.Record) -> Service:
    return Service(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        duration_minutes=row["duration_minutes"],
        price=row["price"],
        currency=row["currency"].strip(),
        capacity=row["capacity"],
        active=row["active"],
        sort_order=row["sort_order"],
        deposit_rule=DepositRule(DepositKind(row["deposit_kind"]), row["deposit_value"]),
    )


async def insert_service(conn: asyncpg.Connection, values: Mapping[str, Any]) -> Service:
    names = sorted(values)
    unknown = set(names) - SERVICE_COLUMNS
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    placeholders = ", ".join(f"${i + 1}" for i in range(len(names)))
    row = await conn.fetchrow(
        f"INSERT INTO services ({', '.join(names)}) VALUES ({placeholders}) RETURNING *",
        *(values[n] for n in names),
    )
    return service_from_row(row)


async def update_service(
    conn: asyncpg.Connection, service_id: int, changes: Mapping[str, Any], now: datetime
) -> Service | None:
    clause, values = _set_clause(changes, SERVICE_COLUMNS, 3)
    row = await conn.fetchrow(
        f"UPDATE services SET {clause}, updated_at = $2 WHERE id = $1 RETURNING *",
        service_id,
        now,
        *values,
    )
    return service_from_row(row) if row else None


async def get_service(conn: asyncpg.Connection, service_id: int) -> Service | None:
    row = await conn.fetchrow("SELECT * FROM services WHERE id = $1", service_id)
    return service_from_row(row) if row else None


async def list_services(conn: asyncpg.Connection, *, active_only: bool) -> list[Service]:
    rows = await conn.fetch(
        "SELECT * FROM services WHERE active OR NOT $1 ORDER BY sort_order, name, id", active_only
    )
    return [service_from_row(r) for r in rows]


_STAFF_SELECT = """
    SELECT s.*, coalesce(array_agg(ss.service_id ORDER BY ss.service_id)
                         FILTER (WHERE ss.service_id IS NOT NULL), '{}') AS service_ids
    FROM staff s LEFT JOIN staff_services ss ON ss.staff_id = s.id
"""


def staff_from_row(row: asyncpg.Record) -> Staff:
    return Staff(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        telegram_user_id=row["telegram_user_id"],
        active=row["active"],
        sort_order=row["sort_order"],
        service_ids=tuple(row["service_ids"]),
    )


async def insert_staff(conn: asyncpg.Connection, values: Mapping[str, Any]) -> int:
    names = sorted(values)
    unknown = set(names) - STAFF_COLUMNS
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    placeholders = ", ".join(f"${i + 1}" for i in range(len(names)))
    return await conn.fetchval(
        f"INSERT INTO staff ({', '.join(names)}) VALUES ({placeholders}) RETURNING id",
        *(values[n] for n in names),
    )


async def update_staff(
    conn: asyncpg.Connection, staff_id: int, changes: Mapping[str, Any], now: datetime
) -> bool:
    clause, values = _set_clause(changes, STAFF_COLUMNS, 3)
    status = await conn.execute(
        f"UPDATE staff SET {clause}, updated_at = $2 WHERE id = $1", staff_id, now, *values
    )
    return status != "UPDATE 0"


async def lock_staff(conn: asyncpg.Connection, staff_id: int) -> bool:
    """Serialises edits of one staff member's links and hours."""
    return bool(
        await conn.fetchval("SELECT true FROM staff WHERE id = $1 FOR NO KEY UPDATE", staff_id)
    )


async def get_staff(conn: asyncpg.Connection, staff_id: int) -> Staff | None:
    row = await conn.fetchrow(_STAFF_SELECT + " WHERE s.id = $1 GROUP BY s.id", staff_id)
    return staff_from_row(row) if row else None


async def list_staff(
    conn: asyncpg.Connection, *, service_id: int | None, active_only: bool
) -> list[Staff]:
    rows = await conn.fetch(
        _STAFF_SELECT
        + """ WHERE (s.active OR NOT $2)
              AND ($1::bigint IS NULL OR EXISTS (
                  SELECT 1 FROM staff_services x WHERE x.staff_id = s.id AND x.service_id = $1))
            GROUP BY s.id ORDER BY s.sort_order, s.name, s.id""",
        service_id,
        active_only,
    )
    return [staff_from_row(r) for r in rows]


async def replace_staff_services(
    conn: asyncpg.Connection, staff_id: int, service_ids: Sequence[int]
) -> None:
    await conn.execute("DELETE FROM staff_services WHERE staff_id = $1", staff_id)
    await conn.execute(
        "INSERT INTO staff_services (staff_id, service_id)"
        " SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
        staff_id,
        list(service_ids),
    )


async def lock_catalogue(conn: asyncpg.Connection) -> None:
    """Serialises catalogue edits that first look at what exists (the one settings row: every
    catalogue change updates it anyway, through the version triggers)."""
    await conn.execute("SELECT 1 FROM settings FOR UPDATE")


async def has_staff(conn: asyncpg.Connection) -> bool:
    """Whether the business has any staff member, switched off or not."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM staff)"))


async def offer_service_by_every_staff(conn: asyncpg.Connection, service_id: int) -> None:
    await conn.execute(
        "INSERT INTO staff_services (staff_id, service_id) SELECT id, $1 FROM staff"
        " ON CONFLICT DO NOTHING",
        service_id,
    )
