"""The catalogue cache: settings, services, staff, hours, exceptions and blocks, kept in process.

Nothing here is ever invalidated by hand. Every change of the catalogue, whoever makes it (this
process, another one, plain SQL), moves ``settings.catalogue_version`` (triggers, tenant migration
0002), and the two ways of reading the cache rely on that version:

- :meth:`CatalogueCache.current` (what screens show, through a :class:`CatalogueReader`) asks the
  database for the version (:class:`VersionProbe`: one tiny query, shared by the reads that ask at
  the same time) and serves the copy it holds only if the version is still the same; otherwise it
  loads the catalogue again. A change committed before the read began is always seen.
- :meth:`CatalogueCache.view` (booking a slot, :mod:`.placement`) serves the copy without asking:
  ``book_slots`` refuses a request validated against an older version (``stale``), and the caller
  reloads and validates again. The TTL bounds how long a copy is trusted this way after it was last
  loaded or found current. The one screen built without any query, the summary after a customer taps
  a time (``CatalogueReader.recent``), uses it too: it shows the catalogue as last found current
  (when the times were shown, typically) and Confirm books only against the current one.

Local edits through :class:`~.catalogue.CatalogueService` also drop the copy at once (its write path
does it, not its callers), so this process's own edits cost no version mismatch.

The invariants that keep :meth:`~CatalogueCache.current` exact under concurrency:

- a load that overlapped a local invalidation is not kept (``generation``), so a copy from before a
  local edit never comes back after it;
- a reader that found no usable copy (or a version mismatch) takes a copy another reader loaded
  meanwhile only if that load began after its own read did (``_loads``), so waiting readers share one
  reload without ever getting a copy older than their start.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from tenant_bot.booking import slots as engine
from tenant_bot.booking.availability import assemble, rules_of
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import BookingError, NotFound, StorageUnavailable
from tenant_bot.booking.holidays import CALENDARS
from tenant_bot.booking.models import BusinessSettings, Clock, Service, Staff, WorkInterval
from tenant_bot.booking.repositories import cache as repo

# The window covers every start a customer may book (the horizon is at most 366 days).
WINDOW_BEFORE = timedelta(days=2)
WINDOW_AFTER = timedelta(days=368)


@dataclass(frozen=True, slots=True)
class CatalogueView:
    """One consistent copy of the catalogue (``version`` as read) for starts within the window.

    ``services`` (every service, switched-off ones too) and ``staff`` (every staff member) are in
    the owner's order, as :class:`~.catalogue.CatalogueService` lists them."""

    version: int
    settings: BusinessSettings
    rules: engine.Rules
    services: dict[int, Service]
    staff: tuple[Staff, ...]
    staff_active: dict[int, bool]
    staff_services: dict[int, frozenset[int]]
    availability: dict[int, engine.StaffAvailability]
    business_exceptions: dict[date, list[WorkInterval]]
    window_start: datetime
    window_end: datetime

    def covers(self, start: datetime) -> bool:
        """Whether exceptions and blocks around ``start`` are in this copy."""
        return self.window_start + timedelta(days=1) <= start < self.window_end - timedelta(days=1)


class VersionProbe:
    """Reads the catalogue's version for whoever asks, one query in flight at a time.

    Requests that arrive while a query is in flight share the next one, so every answer comes from a
    query sent after its request was made. While requests keep coming the queries share one pooled
    connection, and the pool's reset round trip on release happens after the answers are given, not
    on the caller's time (the pattern of :class:`~.batching.BookingWriter`)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[asyncio.Future[int]] = []
        self._prober: asyncio.Task[None] | None = None

    async def version(self) -> int:
        """``settings.catalogue_version`` as of a query sent after this call began."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._prober is None:
            self._prober = asyncio.create_task(self._probe_waiting(), name="catalogue-version")
        return await future

    async def _probe_waiting(self) -> None:
        try:
            while self._waiting:
                await self._probe()
        except BaseException:  # cancelled (shutdown): nobody may be left waiting
            for future in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise
        finally:
            self._prober = None

    async def _probe(self) -> None:
        asking: list[asyncio.Future[int]] = []
        try:
            async with self._db.connection() as conn:
                while self._waiting:
                    asking, self._waiting = self._waiting, []
                    version = await repo.catalogue_version(conn)
                    for future in asking:
                        if not future.done():
                            future.set_result(version)
                    asking = []
        except BookingError as exc:  # the database is away: those asking hear it
            if not asking:  # the connection failed before a query (or on its way back)
                asking, self._waiting = self._waiting, []
            for future in asking:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:
            for future in asking:
                future.cancel()
            raise


class CatalogueCache:
    """Holds the current :class:`CatalogueView`; one per :class:`~tenant_bot.booking.BookingCore`."""

    def __init__(self, *, ttl_seconds: float = 30.0) -> None:
        self._ttl = ttl_seconds
        self._view: CatalogueView | None = None
        self._view_load = 0  # which load made ``_view`` (1, 2, ...)
        self._trusted_until = 0.0  # monotonic: :meth:`view` serves ``_view`` unasked until then
        self._loads = 0  # loads begun
        self._generation = 0
        self._lock = asyncio.Lock()
        self._probe: VersionProbe | None = None  # made with the first ``db`` asked for

    @property
    def generation(self) -> int:
        """Moves at every :meth:`invalidate`."""
        return self._generation

    def invalidate(self) -> None:
        """Forget the copy (called by the catalogue's write path and on a ``stale`` answer)."""
        self._view = None
        self._generation += 1

    async def view(self, db: Database, *, now: datetime) -> CatalogueView:
        """The copy held, without asking the database whether it is current (for callers that hand
        its ``version`` to the database); reloaded (on a connection of ``db``) when missing, not
        loaded or found current within the TTL, or not covering ``now``'s window."""
        current = self._view
        if current is not None and self._trusted(current, now):
            return current
        async with self._lock:  # one reload serves every waiting request
            current = self._view
            if current is not None and self._trusted(current, now):
                return current
            return await self._reload(db, now)

    async def current(self, db: Database, *, now: datetime) -> CatalogueView:
        """The catalogue as the database has it: the copy held if its version is still the
        database's (one round trip), else a fresh load. When the database cannot be reached to
        ask, the copy held is served (nothing can be booked against it meanwhile: booking asks the
        database)."""
        began = self._loads
        held = self._view
        if held is not None and held.covers(now):
            if self._probe is None:
                self._probe = VersionProbe(db)
            try:
                version = await self._probe.version()
            except StorageUnavailable:
                if self._view is held:
                    return held
                raise
            if version == held.version:
                if self._view is held:
                    self._trusted_until = time.monotonic() + self._ttl
                return held
        async with self._lock:
            current = self._view
            if current is not None and self._view_load > began and current.covers(now):
                return current  # loaded after this read began, while it waited
            return await self._reload(db, now)

    def _trusted(self, view: CatalogueView, now: datetime) -> bool:
        return time.monotonic() < self._trusted_until and view.covers(now)

    async def _reload(self, db: Database, now: datetime) -> CatalogueView:
        """Load a copy and keep it unless a local edit invalidated the cache meanwhile (hold the
        lock)."""
        self._loads += 1
        load, generation = self._loads, self._generation
        async with db.connection() as conn:
            loaded = await self._load(conn, now)
        if generation == self._generation:
            self._view, self._view_load = loaded, load
            self._trusted_until = time.monotonic() + self._ttl
        return loaded

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
        staff_ids = [member.id for member in rows.staff]
        holidays = await CALENDARS.for_range(
            rows.settings.holiday_country, rows.settings.holidays_opened, start, end
        )
        availability, business = assemble(
            staff_ids,
            hours=rows.hours,
            exceptions=rows.exceptions,
            blocks=rows.blocks,
            holidays=holidays,
        )
        return CatalogueView(
            version=rows.version,
            settings=rows.settings,
            rules=rules_of(rows.settings),
            services={s.id: s for s in rows.services},
            staff=tuple(rows.staff),
            staff_active={m.id: m.active for m in rows.staff},
            staff_services={m.id: frozenset(m.service_ids) for m in rows.staff},
            availability={a.staff_id: a for a in availability},
            business_exceptions=business,
            window_start=start,
            window_end=end,
        )


class CatalogueReader:
    """The catalogue for one request (the tenant bot makes one per update, see
    :meth:`~.catalogue.CatalogueService.reader`).

    The first read takes :meth:`CatalogueCache.current` (one version check while nothing changed);
    later reads of the same request reuse that copy, so one screen is built from one version, until
    this process edits the catalogue (the cache's ``generation`` moves), after which the next read
    looks again. There is nothing to invalidate."""

    def __init__(self, cache: CatalogueCache, db: Database, *, clock: Clock) -> None:
        self._cache = cache
        self._db = db
        self._clock = clock
        self._view: CatalogueView | None = None
        self._generation = -1

    async def view(self) -> CatalogueView:
        """The current catalogue (checked once per request and after each local edit)."""
        generation = self._cache.generation
        if self._view is None or generation != self._generation:
            self._view = await self._cache.current(self._db, now=self._clock())
            self._generation = generation
        return self._view

    async def recent(self) -> CatalogueView:
        """The copy this process holds, without asking the database: never older than this
        process's own edits, and loaded or found current less than the TTL ago. Only for a step
        that must make no query (a customer tapping a time: Confirm checks the version anyway);
        later reads of the request use it too."""
        generation = self._cache.generation
        if self._view is None or generation != self._generation:
            self._view = await self._cache.view(self._db, now=self._clock())
            self._generation = generation
        return self._view

    async def settings(self) -> BusinessSettings:
        return (await self.view()).settings

    async def services(self) -> list[Service]:
        """Active services, in the owner's order."""
        return [s for s in (await self.view()).services.values() if s.active]

    async def service(self, service_id: int) -> Service:
        """An active service; raises :class:`NotFound` for a missing or switched-off one."""
        found = (await self.view()).services.get(service_id)
        if found is None or not found.active:
            raise NotFound("no such service", entity="service", id=service_id)
        return found

    async def staff_for(self, service_id: int) -> list[Staff]:
        """Active staff providing the service, in the owner's order."""
        return [m for m in (await self.view()).staff if m.active and service_id in m.service_ids]

    async def all_staff(self) -> list[Staff]:
        """Every staff member, switched-off ones too, in the owner's order."""
        return list((await self.view()).staff)

    async def staff_name(self, staff_id: int) -> str:
        """The name of any staff member (a switched-off one too)."""
        for member in (await self.view()).staff:
            if member.id == staff_id:
                return member.name
        raise NotFound("no such staff member", entity="staff", id=staff_id)
