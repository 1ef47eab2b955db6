"""ClosureService: a vacation or a closure over several whole days, and the bookings left inside.

A closure is a blocked period from the first day's local midnight to the midnight after the last
day (DST-correct), for one staff member or the whole business. New bookings there are refused by
the slot engine like any block; bookings already inside stay until the owner moves or cancels each
(a closure never cancels on its own: a customer hears about their booking from the owner, with the
owner's words). :meth:`bookings_inside` lists them, for one-tap actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from tenant_bot.booking.catalogue_cache import CatalogueCache
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, NotFound
from tenant_bot.booking.models import BlockedPeriod, BookingDetails, Clock, utc_now
from tenant_bot.booking.repositories import availability as hours_repo
from tenant_bot.booking.repositories import bookings as bookings_repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import closures as repo

MAX_CLOSURE_DAYS = 366


@dataclass(frozen=True, slots=True)
class Closure:
    """A closed period and the active bookings inside it (oldest first)."""

    block: BlockedPeriod
    bookings: list[BookingDetails]


def local_days(day_from: date, day_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Local days ``day_from..day_to`` (inclusive) as an aware [start, end) pair."""
    return (
        datetime.combine(day_from, time(0), zone),
        datetime.combine(day_to + timedelta(days=1), time(0), zone),
    )


class ClosureService:
    """Close whole days (vacations, closures) and see what was booked inside."""

    def __init__(
        self, db: Database, *, clock: Clock = utc_now, cache: CatalogueCache | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache if cache is not None else CatalogueCache()

    async def close_days(
        self, day_from: date, day_to: date, *, staff_id: int | None = None, reason: str = ""
    ) -> Closure:
        """Close local days ``day_from..day_to`` (inclusive, at most a year) for ``staff_id``
        (None: everyone); returns the closure with the bookings already inside it."""
        if day_to < day_from:
            raise InvalidInput("day_to", "must not be before the first day")
        if (day_to - day_from).days >= MAX_CLOSURE_DAYS:
            raise InvalidInput("day_to", f"a closure lasts at most {MAX_CLOSURE_DAYS} days")
        if len(reason) > 500:
            raise InvalidInput("reason", "must be at most 500 characters")
        try:
            async with self._db.transaction() as conn:
                if staff_id is not None and await catalogue_repo.get_staff(conn, staff_id) is None:
                    raise NotFound("no such staff member", entity="staff", id=staff_id)
                zone = (await catalogue_repo.get_settings(conn)).zone
                starts_at, ends_at = local_days(day_from, day_to, zone)
                block = await hours_repo.insert_block(
                    conn,
                    staff_id=staff_id,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    reason=reason,
                    now=self._clock(),
                )
                inside = await self._inside(conn, block)
        finally:
            self._cache.invalidate()
        return Closure(block, inside)

    async def get(self, block_id: int) -> Closure:
        """A closure (any blocked period) and the active bookings still inside it."""
        async with self._db.connection() as conn:
            block = await repo.get_block(conn, block_id)
            if block is None:
                raise NotFound("no such blocked period", entity="blocked_period", id=block_id)
            return Closure(block, await self._inside(conn, block))

    @staticmethod
    async def _inside(conn: asyncpg.Connection, block: BlockedPeriod) -> list[BookingDetails]:
        return await bookings_repo.list_details(
            conn,
            staff_id=block.staff_id,
            active_only=True,
            ends_after=block.starts_at,
            starts_before=block.ends_at,
        )
