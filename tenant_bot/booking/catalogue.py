"""CatalogueService: what the owner menu edits — settings, services, staff, hours, days off, blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from tenant_bot.booking.catalogue_cache import CatalogueCache, CatalogueReader
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, InvalidTimeZone, NotFound
from tenant_bot.booking.hours import ordered_intervals
from tenant_bot.booking.models import (
    BlockedPeriod,
    BusinessSettings,
    Clock,
    DateException,
    Service,
    Staff,
    WorkInterval,
    utc_now,
)
from tenant_bot.booking.phones import normalize_phone
from tenant_bot.booking.repositories import availability as hours_repo
from tenant_bot.booking.repositories import catalogue as repo
from tenant_bot.booking.repositories import reminders as reminders_repo


def _validate_settings(changes: dict[str, Any]) -> dict[str, Any]:
    if "time_zone" in changes:
        try:
            ZoneInfo(changes["time_zone"])
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidTimeZone(
                "time_zone", f"{changes['time_zone']!r} is unknown; use e.g. Europe/Moscow"
            ) from exc
    if changes.get("phone"):
        changes["phone"] = normalize_phone(changes["phone"])
    if "reminder_offsets_minutes" in changes:
        offsets = sorted(set(changes["reminder_offsets_minutes"]), reverse=True)
        if len(offsets) > 5 or any(o <= 0 or o > 43200 for o in offsets):
            raise InvalidInput(
                "reminder_offsets_minutes", "give up to 5 offsets between 1 and 43200 minutes"
            )
        changes["reminder_offsets_minutes"] = offsets
    release = changes.get("release_unconfirmed_hours")
    if release is not None and not 1 <= release <= 168:
        raise InvalidInput(
            "release_unconfirmed_hours", "give 1-168 hours before the start, or None for never"
        )
    if "no_show_action" in changes and changes["no_show_action"] not in {"off", "deposit", "block"}:
        raise InvalidInput("no_show_action", "must be off, deposit or block")
    if "no_show_threshold" in changes and not 1 <= changes["no_show_threshold"] <= 100:
        raise InvalidInput("no_show_threshold", "give 1-100 no-shows")
    return changes


def _check_release_after_reminder(settings: BusinessSettings) -> None:
    """A booking is released only if its customer was reminded before the release time, so the
    release must come after the first reminder (else it would never happen)."""
    hours = settings.release_unconfirmed_hours
    if hours is None:
        return
    first = max(settings.reminder_offsets_minutes, default=0)
    if hours * 60 >= first:
        raise InvalidInput(
            "release_unconfirmed_hours",
            "must be fewer hours before the start than the first reminder",
            first_reminder_minutes=first,
            hours=hours,
        )


def _validate_service(values: dict[str, Any]) -> dict[str, Any]:
    if "price" in values:
        try:
            values["price"] = Decimal(str(values["price"]))
        except InvalidOperation as exc:
            raise InvalidInput("price", "must be a number like 1500 or 1500.50") from exc
    if "name" in values and not 1 <= len(values["name"].strip()) <= 100:
        raise InvalidInput("name", "must be 1-100 characters")
    return values


async def _owner_as_staff(
    conn: asyncpg.Connection, owner_name: str, owner_telegram_id: int | None
) -> None:
    """With no staff at all, the owner becomes the one staff member, providing every service (the
    caller holds :func:`~.repositories.catalogue.lock_catalogue`, so two taps make one)."""
    if await repo.has_staff(conn):
        return
    name = owner_name.strip()[:100]
    if not name:
        raise InvalidInput("owner_name", "must be 1-100 characters")
    staff_id = await repo.insert_staff(
        conn, {"name": name, "description": "", "telegram_user_id": owner_telegram_id}
    )
    services = await repo.list_services(conn, active_only=False)
    await repo.replace_staff_services(conn, staff_id, [s.id for s in services])


class CatalogueService:
    """Owner-side edits; every bad value is refused with an :class:`InvalidInput` naming the field.

    :meth:`reader` gives the cached reads customers' screens need (settings, active services and
    staff), never staler than the database: see :mod:`.catalogue_cache`."""

    def __init__(
        self, db: Database, *, clock: Clock = utc_now, cache: CatalogueCache | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache if cache is not None else CatalogueCache()

    def reader(self) -> CatalogueReader:
        """Cached reads of the current catalogue for one request (the bot makes one per update);
        nothing to invalidate: see :class:`~.catalogue_cache.CatalogueReader`."""
        return CatalogueReader(self._cache, self._db, clock=self._clock)

    async def is_staff(self, telegram_user_id: int) -> bool:
        """Whether ``telegram_user_id`` is a staff member's Telegram account (switched-off ones
        too), from the cached catalogue."""
        staff = await self.reader().all_staff()
        return any(member.telegram_user_id == telegram_user_id for member in staff)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction after which this process's catalogue cache is dropped (even on error:
        a failed edit may still have raced a successful one). Other processes' copies notice the
        version the triggers moved."""
        try:
            async with self._db.transaction() as conn:
                yield conn
        finally:
            self._cache.invalidate()

    async def get_settings(self) -> BusinessSettings:
        """The business profile and booking rules."""
        async with self._db.connection() as conn:
            return await repo.get_settings(conn)

    async def update_settings(self, **changes: Any) -> BusinessSettings:
        """Change any :class:`BusinessSettings` field by name (e.g. ``time_zone="Europe/Berlin"``)."""
        unknown = set(changes) - repo.SETTINGS_COLUMNS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not a setting")
        if not changes:
            return await self.get_settings()
        changes = _validate_settings(changes)
        async with self._write() as conn:
            before = await repo.get_settings(conn)
            updated = await repo.update_settings(conn, changes, self._clock())
            _check_release_after_reminder(updated)
            if updated.reminder_offsets_minutes != before.reminder_offsets_minutes:
                # bookings ahead follow the new offsets (reminders already sent are not repeated)
                await reminders_repo.rearm_future(
                    conn, offsets=list(updated.reminder_offsets_minutes), now=self._clock()
                )
            return updated

    async def create_service(
        self,
        *,
        name: str,
        duration_minutes: int,
        price: Decimal | int | str = 0,
        currency: str = "RUB",
        capacity: int = 1,
        description: str = "",
        sort_order: int = 0,
    ) -> Service:
        """Add a service; ``capacity`` > 1 sells that many seats per session."""
        values = _validate_service(
            {
                "name": name,
                "duration_minutes": duration_minutes,
                "price": price,
                "currency": currency,
                "capacity": capacity,
                "description": description,
                "sort_order": sort_order,
            }
        )
        async with self._write() as conn:
            return await repo.insert_service(conn, values)

    async def add_service(
        self,
        *,
        name: str,
        duration_minutes: int,
        price: Decimal | int | str = 0,
        owner_name: str,
        owner_telegram_id: int | None = None,
    ) -> Service:
        """A service the owner adds from their menu, provided by every staff member. A business
        with no staff yet gets its owner as its one staff member (as :meth:`team` does), so a solo
        owner's service is bookable without an "add yourself as staff" step."""
        values = _validate_service(
            {"name": name, "duration_minutes": duration_minutes, "price": price}
        )
        async with self._write() as conn:
            await repo.lock_catalogue(conn)
            service = await repo.insert_service(conn, values)
            await _owner_as_staff(conn, owner_name, owner_telegram_id)
            await repo.offer_service_by_every_staff(conn, service.id)
        return service

    async def update_service(self, service_id: int, **changes: Any) -> Service:
        """Change fields of a service (``active=False`` hides it from customers)."""
        unknown = set(changes) - repo.SERVICE_COLUMNS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not a service field")
        async with self._write() as conn:
            if not changes:
                found = await repo.get_service(conn, service_id)
            else:
                found = await repo.update_service(
                    conn, service_id, _validate_service(changes), self._clock()
                )
        if found is None:
            raise NotFound("no such service", entity="service", id=service_id)
        return found

    async def get_service(self, service_id: int) -> Service:
        async with self._db.connection() as conn:
            found = await repo.get_service(conn, service_id)
        if found is None:
            raise NotFound("no such service", entity="service", id=service_id)
        return found

    async def list_services(self, *, active_only: bool = True) -> list[Service]:
        async with self._db.connection() as conn:
            return await repo.list_services(conn, active_only=active_only)

    async def create_staff(
        self,
        *,
        name: str,
        service_ids: Sequence[int] = (),
        description: str = "",
        telegram_user_id: int | None = None,
        sort_order: int = 0,
    ) -> Staff:
        """Add a staff member (or resource) providing ``service_ids``."""
        if not 1 <= len(name.strip()) <= 100:
            raise InvalidInput("name", "must be 1-100 characters")
        values = {
            "name": name,
            "description": description,
            "telegram_user_id": telegram_user_id,
            "sort_order": sort_order,
        }
        async with self._write() as conn:
            staff_id = await repo.insert_staff(conn, values)
            await repo.replace_staff_services(conn, staff_id, service_ids)
            found = await repo.get_staff(conn, staff_id)
        assert found is not None
        return found

    async def update_staff(self, staff_id: int, **changes: Any) -> Staff:
        """Change fields of a staff member (``active=False`` stops new bookings with them)."""
        unknown = set(changes) - repo.STAFF_COLUMNS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not a staff field")
        async with self._write() as conn:
            if changes and not await repo.update_staff(conn, staff_id, changes, self._clock()):
                raise NotFound("no such staff member", entity="staff", id=staff_id)
            found = await repo.get_staff(conn, staff_id)
        if found is None:
            raise NotFound("no such staff member", entity="staff", id=staff_id)
        return found

    async def set_staff_services(self, staff_id: int, service_ids: Sequence[int]) -> Staff:
        """Replace the services a staff member provides."""
        async with self._write() as conn:
            if not await repo.lock_staff(conn, staff_id):
                raise NotFound("no such staff member", entity="staff", id=staff_id)
            await repo.replace_staff_services(conn, staff_id, service_ids)
            found = await repo.get_staff(conn, staff_id)
        assert found is not None
        return found

    async def get_staff(self, staff_id: int) -> Staff:
        async with self._db.connection() as conn:
            found = await repo.get_staff(conn, staff_id)
        if found is None:
            raise NotFound("no such staff member", entity="staff", id=staff_id)
        return found

    async def list_staff(
        self, *, service_id: int | None = None, active_only: bool = True
    ) -> list[Staff]:
        """Staff, optionally only those providing ``service_id``."""
        async with self._db.connection() as conn:
            return await repo.list_staff(conn, service_id=service_id, active_only=active_only)

    async def team(self, *, owner_name: str, owner_telegram_id: int | None = None) -> list[Staff]:
        """Every staff member (switched-off ones too), for the owner's menu. A business with none
        has its owner as its one staff member, created here providing every service: a business
        of one person needs no "add yourself as staff" step, and its customers see that person."""
        staff = await self.list_staff(active_only=False)
        if staff:
            return staff
        async with self._write() as conn:
            await repo.lock_catalogue(conn)
            await _owner_as_staff(conn, owner_name, owner_telegram_id)
            return await repo.list_staff(conn, service_id=None, active_only=False)

    async def set_working_hours(
        self, staff_id: int, weekday: int, intervals: Sequence[WorkInterval]
    ) -> None:
        """Replace one weekday's hours (0 = Monday); several intervals make breaks, none a day off."""
        if not 0 <= weekday <= 6:
            raise InvalidInput("weekday", "must be 0 (Monday) to 6 (Sunday)")
        ordered = ordered_intervals(intervals)
        async with self._write() as conn:
            if not await repo.lock_staff(conn, staff_id):
                raise NotFound("no such staff member", entity="staff", id=staff_id)
            await hours_repo.replace_day_hours(conn, staff_id, weekday, ordered)

    async def get_working_hours(self, staff_id: int) -> dict[int, list[WorkInterval]]:
        """Weekday (0 = Monday) -> intervals; missing weekdays are days off."""
        async with self._db.connection() as conn:
            return await hours_repo.get_weekly_hours(conn, staff_id)

    async def copy_working_hours(
        self, staff_id: int, weekday: int, to_weekdays: Sequence[int]
    ) -> dict[int, list[WorkInterval]]:
        """Give each of ``to_weekdays`` the hours of ``weekday`` (e.g. :data:`~.hours.WORKWEEK`:
        Monday's hours for the working week); returns the week as it now is."""
        if not all(0 <= day <= 6 for day in (weekday, *to_weekdays)):
            raise InvalidInput("weekday", "must be 0 (Monday) to 6 (Sunday)")
        async with self._write() as conn:
            if not await repo.lock_staff(conn, staff_id):
                raise NotFound("no such staff member", entity="staff", id=staff_id)
            await hours_repo.copy_day_hours(conn, staff_id, weekday, sorted(set(to_weekdays)))
            return await hours_repo.get_weekly_hours(conn, staff_id)

    async def set_date_exception(
        self,
        day: date,
        intervals: Sequence[WorkInterval] = (),
        *,
        staff_id: int | None = None,
        note: str = "",
    ) -> DateException:
        """Replace the hours of one date: no intervals = a day off; ``staff_id`` None = everyone."""
        ordered = ordered_intervals(intervals)
        async with self._write() as conn:
            if staff_id is not None and not await repo.lock_staff(conn, staff_id):
                raise NotFound("no such staff member", entity="staff", id=staff_id)
            await hours_repo.replace_exception(
                conn, staff_id=staff_id, day=day, intervals=ordered, note=note
            )
        return DateException(staff_id, day, tuple(ordered), note)

    async def clear_date_exception(self, day: date, *, staff_id: int | None = None) -> bool:
        """Go back to weekly hours on ``day``; False if there was no exception."""
        async with self._write() as conn:
            return await hours_repo.clear_exception(conn, staff_id=staff_id, day=day) > 0

    async def hours_on(self, day: date, *, staff_id: int) -> tuple[list[WorkInterval], str]:
        """The staff member's hours on ``day`` and where they come from: ``date`` (their own
        hours for that date), ``business`` (a date for everyone) or ``weekly``."""
        async with self._db.connection() as conn:
            exceptions = await hours_repo.list_exceptions(conn, day, day)
            weekly = await hours_repo.get_weekly_hours(conn, staff_id)
        for wanted, source in ((staff_id, "date"), (None, "business")):
            for exception in exceptions:
                if exception.staff_id == wanted:
                    return list(exception.intervals), source
        return weekly.get(day.weekday(), []), "weekly"

    async def list_date_exceptions(self, day_from: date, day_to: date) -> list[DateException]:
        async with self._db.connection() as conn:
            return await hours_repo.list_exceptions(conn, day_from, day_to)

    async def block_period(
        self,
        starts_at: datetime,
        ends_at: datetime,
        *,
        staff_id: int | None = None,
        reason: str = "",
    ) -> BlockedPeriod:
        """Close a period to new bookings (existing bookings stay; the owner cancels them if needed)."""
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise InvalidInput("starts_at", "must be time zone aware")
        if ends_at <= starts_at:
            raise InvalidInput("ends_at", "must be after starts_at")
        async with self._write() as conn:
            return await hours_repo.insert_block(
                conn,
                staff_id=staff_id,
                starts_at=starts_at,
                ends_at=ends_at,
                reason=reason,
                now=self._clock(),
            )

    async def unblock_period(self, block_id: int) -> None:
        async with self._write() as conn:
            if not await hours_repo.delete_block(conn, block_id):
                raise NotFound("no such blocked period", entity="blocked_period", id=block_id)

    async def list_blocked_periods(
        self, starts_at: datetime, ends_at: datetime
    ) -> list[BlockedPeriod]:
        async with self._db.connection() as conn:
            return await hours_repo.list_blocks(conn, starts_at, ends_at)
