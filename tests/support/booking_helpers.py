"""Helpers shared by the booking-core tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tenant_bot.booking import BookingCore, Service, Staff, WorkInterval

# Monday 2030-01-07 09:00 in Moscow (UTC+3) is 06:00 UTC; tests start the clock on the Sunday before.
START = datetime(2030, 1, 6, 9, 0, tzinfo=UTC)
MONDAY = date(2030, 1, 7)


class FakeClock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Shop:
    """A small business: one service, two staff members working 09:00-18:00 every day."""

    service: Service
    ivan: Staff
    olga: Staff


def moscow(day: date, hour: int, minute: int = 0) -> datetime:
    """A Moscow wall time (UTC+3, no DST since 2014) as UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


async def seed_barber(
    core: BookingCore, *, business: str, customer_id: int, customer_name: str
) -> None:
    """A business a test books at through a real bot: one service, one staff member 10:00-18:00
    every day, booking allowed at once, and ``customer_id`` registered."""
    await core.catalogue.update_settings(
        business_name=business, min_notice_minutes=0, time_zone="Europe/Moscow"
    )
    service = await core.catalogue.create_service(name="Haircut", duration_minutes=60, price=1500)
    staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
    for weekday in range(7):
        await core.catalogue.set_working_hours(
            staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
        )
    await core.customers.register(
        customer_id, name=customer_name, phone="+79161234567", locale="en"
    )
