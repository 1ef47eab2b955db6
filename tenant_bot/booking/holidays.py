"""Public holidays from the country's production calendar, for businesses that switch it on.

The calendar comes from the ``holidays`` package (python-holidays, MIT, vacanza/holidays: releases
every few weeks, 200+ countries, maintained by a team, with Russia's production calendar including
the days off moved by government decree and the Saturdays worked instead, ``weekend_workdays``).
The library is never imported by the bot itself: loading it for one country imports some 300 modules
(all its countries; +11.8 MB of RSS measured in a tenant bot, half a second of CPU). A short-lived
child process (:mod:`.holiday_child`, run by path) computes a country-year and prints
a few dozen dates as JSON, once per bot process per country-year, and only in bots whose owner
switched the calendar on; the bot keeps the dates.

Rules (applied by :func:`~.availability.assemble`, so the slot engine, the cached fast path and
the calendars agree):

- a public holiday (or a day off moved onto a weekday) is closed for everyone, unless the owner
  opened it (``settings.holidays_opened``), gave the business other hours that date, or gave a staff
  member their own hours that date (per-date hours always win);
- a working day moved onto a weekend (a working Saturday) keeps each staff member's own hours of
  that weekday if they work it anyway, else gets the hours of the weekday it stands in for (the
  library names the substituted day off; Monday's when it cannot be told).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, StorageUnavailable
from tenant_bot.booking.models import Clock, utc_now
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import holidays as repo

if TYPE_CHECKING:
    from tenant_bot.booking.catalogue_cache import CatalogueCache

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("holiday_child.py")
CHILD_TIMEOUT_S = 30
UNKNOWN_COUNTRY_EXIT = 3  # as holiday_child.py exits for a country without a calendar


@dataclass(frozen=True, slots=True)
class HolidayDays:
    """Closed days (with their names) and working weekend days (with the weekday whose hours they
    take, 0 = Monday)."""

    closed: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, int] = field(default_factory=dict)

    def without(self, opened: Iterable[date]) -> HolidayDays:
        """The same days less the holidays the owner opened."""
        skip = set(opened)
        return HolidayDays({d: n for d, n in self.closed.items() if d not in skip}, self.workdays)


async def _in_child(country: str, years: list[int]) -> HolidayDays:
    """Country-years computed by a child process (see the module's docstring)."""
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # not the script's folder on sys.path: its holidays.py would shadow the library
            str(CHILD),
            country,
            *(str(year) for year in years),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), CHILD_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        log.error("holiday calendar unavailable", extra={"error": type(exc).__name__})
        raise StorageUnavailable("the holiday calendar could not be computed") from exc
    if child.returncode == UNKNOWN_COUNTRY_EXIT:
        raise InvalidInput(
            "holiday_country", f"{country!r} has no public holiday calendar; use e.g. RU"
        )
    if child.returncode != 0:
        log.error(
            "holiday calendar failed",
            extra={"exit_code": child.returncode, "stderr": err.decode(errors="replace")[-500:]},
        )
        raise StorageUnavailable("the holiday calendar could not be computed")
    data = json.loads(out)
    return HolidayDays(
        {date.fromisoformat(d): name for d, name in data["closed"].items()},
        {date.fromisoformat(d): weekday for d, weekday in data["workdays"].items()},
    )


class HolidayCalendars:
    """Country-years computed once per process (off the event loop) and kept."""

    def __init__(self) -> None:
        self._years: dict[tuple[str, int], HolidayDays] = {}

    async def days(self, country: str, years: Iterable[int]) -> HolidayDays:
        """Every holiday and working weekend day of ``country`` in ``years``."""
        wanted = sorted(set(years))
        missing = [y for y in wanted if (country, y) not in self._years]
        if missing:  # two first requests may both compute: the same facts, harmless
            found = await _in_child(country, missing)
            for year in missing:
                self._years[(country, year)] = HolidayDays(
                    {d: n for d, n in found.closed.items() if d.year == year},
                    {d: w for d, w in found.workdays.items() if d.year == year},
                )
        closed: dict[date, str] = {}
        workdays: dict[date, int] = {}
        for year in wanted:
            found = self._years[(country, year)]
            closed.update(found.closed)
            workdays.update(found.workdays)
        return HolidayDays(closed, workdays)

    async def for_range(
        self, country: str | None, opened: Iterable[date], start: datetime, end: datetime
    ) -> HolidayDays | None:
        """The days around ``start``..``end`` (None with the calendar off), less those opened."""
        if country is None:
            return None
        years = range(start.year - (start.month == 1), end.year + (end.month == 12) + 1)
        return (await self.days(country, years)).without(opened)


# One per process: the computed years are facts about the world, not tenant data.
CALENDARS = HolidayCalendars()


@dataclass(frozen=True, slots=True)
class Holiday:
    """A public holiday ahead, as the owner sees it."""

    day: date
    name: str
    opened: bool


class HolidayService:
    """The owner switches the country's calendar on or off and opens single holidays."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = utc_now,
        cache: CatalogueCache,
        calendars: HolidayCalendars = CALENDARS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache
        self._calendars = calendars

    async def switch(self, country: str | None) -> None:
        """Use ``country``'s calendar (ISO code, e.g. ``RU``), or none."""
        if country is not None:
            country = country.strip().upper()
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise InvalidInput("holiday_country", "use a two-letter country code like RU")
            year = self._clock().year
            await self._calendars.days(country, [year, year + 1])  # unknown: refused here
        try:
            async with self._db.transaction() as conn:
                await repo.set_country(conn, country, self._clock())
        finally:
            self._cache.invalidate()

    async def set_opened(self, day: date, *, opened: bool) -> None:
        """Open a holiday (work as every week) or close it again."""
        try:
            async with self._db.transaction() as conn:
                await repo.set_opened(conn, day, opened, self._clock())
        finally:
            self._cache.invalidate()

    async def ahead(self, *, days: int = 366) -> tuple[str | None, list[Holiday]]:
        """The calendar's country and its holidays from today for ``days`` (none when off)."""
        async with self._db.connection() as conn:
            settings = await catalogue_repo.get_settings(conn)
        if settings.holiday_country is None:
            return None, []
        today = self._clock().astimezone(settings.zone).date()
        last = today + timedelta(days=days)
        found = await self._calendars.days(
            settings.holiday_country, range(today.year, last.year + 1)
        )
        opened = set(settings.holidays_opened)
        return settings.holiday_country, [
            Holiday(day, name, day in opened)
            for day, name in sorted(found.closed.items())
            if today <= day <= last
        ]
