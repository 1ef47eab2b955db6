"""The catalogue cache: settings, services, staff, hours, exceptions and blocks, kept in process.

Booking a slot with a named staff member validates the rules against this cache and then takes the slot
in one round trip (``book_slots``). Correctness does not depend on the cache being fresh: every change of
the catalogue moves ``settings.catalogue_version`` (triggers, migration 0002), ``book_slots`` refuses a
request validated against an older version (``stale``), and the caller reloads and validates again.
Local edits through :class:`~.catalogue.CatalogueService` also invalidate it at once; the TTL only
bounds how long a quiet process keeps its copy.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from tenant_bot.booking import slots as engine
from tenant_bot.booking.availability import assemble, rules_of
from tenant_bot.booking.db import Database
from tenant_bot.booking.models import Service, Settings, WorkInterval
from tenant_bot.booking.repositories import cache as repo

# The window covers every start a customer may book (the horizon is at most 366 days).
WINDOW_BEFORE = timedelta(days=2)
WINDOW_AFTER = timedelta(days=368)


@dataclass(frozen=True, slots=True)
class CatalogueView:
    """One consistent copy of the catalogue (``version`` as read) for starts within the window."""

    version: int
    settings: Settings
    rules: engine.Rules
    services: dict[int, Service]
    staff_active: dict[int, bool]
    staff_services: dict[int, frozenset[int]]
    availability: dict[int, engine.StaffAvailability]
    business_exceptions: dict[date, list[WorkInterval]]
    window_start: datetime
    window_end: datetime
    expires_at: float = field(compare=False)

    def covers(self, start: datetime) -> bool:
        """Whether exceptions and blocks around ``start`` are in this copy."""
        return self.window_start + timedelta(days=1) <= start < self.window_end - timedelta(days=1)


class CatalogueCache:
    """Holds the current :class:`CatalogueView`; one per :class:`~tenant_bot.booking.BookingCore`."""

    def __init__(self, *, ttl_seconds: float = 30.0) -> None:
        self._ttl = ttl_seconds
        self._view: CatalogueView | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the copy (after a local catalogue edit, or a ``stale`` answer)."""
        self._view = None

    async def view(self, db: Database, *, now: datetime) -> CatalogueView:
        """The cached copy, reloaded (on a connection of ``db``) when missing, expired, or not
        covering ``now``'s window."""
        current = self._view
        if current is not None and self._fresh(current, now):
            return current
        async with self._lock:  # one reload serves every waiting request
            current = self._view
            if current is not None and self._fresh(current, now):
                return current
            async with db.connection() as conn:
                current = await self._load(conn, now)
            self._view = current
            return current

    @staticmethod
    def _fresh(view: CatalogueView, now: datetime) -> bool:
        return time.monotonic() < view.expires_at and view.covers(now)

    async def _load(self, conn: asyncpg.Connection, now: datetime) -> CatalogueView:
        start = now.astimezone(UTC) - WINDOW_BEFORE
        end = now.astimezone(UTC) + WINDOW_AFTER
        rows = await repo.load_catalogue(
            conn,
            day_from=start.date() - timedelta(days=1),
            day_to=end.date() + timedelta(days=1),
            range_start=start,
            range_end=end,
        )
        staff_ids = [sid for sid, _, _ in rows.staff]
        availability, business = assemble(
            staff_ids, hours=rows.hours, exceptions=rows.exceptions, blocks=rows.blocks
        )
        return CatalogueView(
            version=rows.version,
            settings=rows.settings,
            rules=rules_of(rows.settings),
            services={s.id: s for s in rows.services},
            staff_active={sid: active for sid, active, _ in rows.staff},
            staff_services={sid: frozenset(ids) for sid, _, ids in rows.staff},
            availability={a.staff_id: a for a in availability},
            business_exceptions=business,
            window_start=start,
            window_end=end,
            expires_at=time.monotonic() + self._ttl,
        )
