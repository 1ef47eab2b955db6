"""AnalyticsService: the owner's statistics over a range of local days, counted in the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.repositories import analytics as repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.slots import to_utc

TOP = 5


@dataclass(frozen=True, slots=True)
class Ranked:
    name: str
    bookings: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class Stats:
    """Bookings starting on ``day_from..day_to``. ``booked`` counts every booking but cancelled
    ones; ``revenue`` is the prices of visits that happened (``done``), ``expected`` of those still
    ahead (awaiting confirmation or confirmed); ``kept`` the deposits kept from no-shows and
    cancellations (paid less what is owed back), counted in ``revenue`` too; a customer is ``new`` when the range holds their
    first booking that counts."""

    day_from: date
    day_to: date
    currency: str
    total: int
    booked: int
    done: int
    no_show: int
    cancelled: int
    revenue: Decimal
    expected: Decimal
    kept: Decimal
    customers: int
    new_customers: int
    top_services: tuple[Ranked, ...] = ()
    top_staff: tuple[Ranked, ...] = ()
    by_hour: dict[int, int] = field(default_factory=dict)

    @property
    def returning_customers(self) -> int:
        return self.customers - self.new_customers

    @property
    def no_show_rate(self) -> float:
        """No-shows among the visits that were due and marked (came or did not)."""
        ended = self.done + self.no_show
        return self.no_show / ended if ended else 0.0

    @property
    def cancellation_rate(self) -> float:
        return self.cancelled / self.total if self.total else 0.0


class AnalyticsService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def stats(self, day_from: date, day_to: date) -> Stats:
        if day_to < day_from:
            raise InvalidInput("day_to", "must not be before day_from")
        async with self._db.connection() as conn:
            settings = await catalogue_repo.get_settings(conn)
            start = to_utc(day_from, 0, settings.zone)
            before = to_utc(day_to, 1440, settings.zone)
            totals = await repo.totals(conn, start, before)
            people = await repo.customers(conn, start, before)
            services = await repo.top(conn, start, before, by="service", limit=TOP)
            staff = await repo.top(conn, start, before, by="staff", limit=TOP)
            hours = await repo.hours(conn, start, before, settings.time_zone)
        return Stats(
            day_from=day_from,
            day_to=day_to,
            currency=settings.currency,
            total=totals["total"],
            booked=totals["booked"],
            done=totals["done"],
            no_show=totals["no_show"],
            cancelled=totals["cancelled"],
            revenue=totals["revenue"] + totals["kept"],
            expected=totals["expected"],
            kept=totals["kept"],
            customers=people["customers"],
            new_customers=people["new"],
            top_services=tuple(Ranked(r["name"], r["n"], r["revenue"]) for r in services),
            top_staff=tuple(Ranked(r["name"], r["n"], r["revenue"]) for r in staff),
            by_hour={r["hour"]: r["n"] for r in hours},
        )
