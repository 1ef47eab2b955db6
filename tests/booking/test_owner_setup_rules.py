"""The booking core's rules behind the owner's set-up (issue 16 item 6): typed hours, copying a
day's hours, the solo owner as staff, closed versus fully booked days, the day's count, and when a
booking awaits "came / did not come"."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tenant_bot.booking import (
    WEEK,
    WORKWEEK,
    Actor,
    BookingCore,
    WorkInterval,
    parse_day_hours,
)
from tenant_bot.booking.errors import InvalidHours, InvalidInput, NotFound
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow

NINE_TO_SIX = [WorkInterval(540, 1080)]


@pytest.mark.parametrize(
    ("typed", "hours"),
    [
        ("9-18", NINE_TO_SIX),
        ("9:00-18:00", NINE_TO_SIX),
        ("9:00–18:00", NINE_TO_SIX),  # en dash
        ("9:00—18:00", NINE_TO_SIX),  # em dash
        ("09.00 - 18.00", NINE_TO_SIX),
        (" 9 − 18 ", NINE_TO_SIX),  # minus sign
        ("9-13, 14-18", [WorkInterval(540, 780), WorkInterval(840, 1080)]),
        ("14-18; 9-13", [WorkInterval(540, 780), WorkInterval(840, 1080)]),
        ("9-13 14:30-18", [WorkInterval(540, 780), WorkInterval(870, 1080)]),
        ("0-24", [WorkInterval(0, 1440)]),
        ("-", []),
        ("Off", []),
        ("выходной", []),
    ],
)
def test_hours_are_read_as_people_type_them(typed: str, hours: list[WorkInterval]) -> None:
    assert parse_day_hours(typed) == hours


@pytest.mark.parametrize(
    ("typed", "problem", "part"),
    [
        ("18-9", "order", "18-9"),
        ("9:00-9:00", "order", "9:00-9:00"),
        ("9-13, 18-14", "order", "18-14"),
        ("25-26", "time", "25-26"),
        ("9:75-10", "time", "9:75-10"),
        ("9-24:30", "time", "9-24:30"),
        ("from nine", "format", "from nine"),
        ("9:00 18:00", "format", "9:00 18:00"),
        ("9-13, 12-18", "overlap", "09:00-13:00, 12:00-18:00"),
    ],
)
def test_nonsense_hours_say_what_is_wrong(typed: str, problem: str, part: str) -> None:
    with pytest.raises(InvalidHours) as caught:
        parse_day_hours(typed)
    assert caught.value.details["problem"] == problem and caught.value.details["text"] == part
    assert isinstance(caught.value, InvalidInput) and caught.value.code == "invalid_hours"


async def test_a_day_is_copied_to_the_workweek_every_day_or_chosen_days(
    core: BookingCore, shop: Shop
) -> None:
    await core.catalogue.set_working_hours(shop.ivan.id, 0, parse_day_hours("10-14, 15-19"))
    week = await core.catalogue.copy_working_hours(shop.ivan.id, 0, WORKWEEK)
    monday = week[0]
    assert [week[d] for d in WORKWEEK] == [monday] * 5 and week[5] == NINE_TO_SIX
    await core.catalogue.set_working_hours(shop.ivan.id, 6, [])
    week = await core.catalogue.copy_working_hours(shop.ivan.id, 6, [5])  # Sunday off -> Saturday
    assert 5 not in week and 6 not in week and week[4] == monday
    week = await core.catalogue.copy_working_hours(shop.ivan.id, 0, WEEK)
    assert week == {d: monday for d in WEEK}
    assert await core.catalogue.get_working_hours(shop.olga.id) == {d: NINE_TO_SIX for d in WEEK}
    with pytest.raises(InvalidInput):
        await core.catalogue.copy_working_hours(shop.ivan.id, 0, [7])
    with pytest.raises(NotFound):
        await core.catalogue.copy_working_hours(999_999, 0, [1])


async def test_a_business_without_staff_has_its_owner_as_the_one_staff_member(
    core: BookingCore,
) -> None:
    teams = await asyncio.gather(
        *(core.catalogue.team(owner_name=" Ivan ", owner_telegram_id=42) for _ in range(4))
    )
    assert all(len(team) == 1 for team in teams)  # concurrent first looks make one, not four
    [owner] = await core.catalogue.list_staff(active_only=False)
    assert owner.name == "Ivan" and owner.telegram_user_id == 42
    cut = await core.catalogue.add_service(
        name="Haircut", duration_minutes=60, price=1500, owner_name="Ivan", owner_telegram_id=42
    )
    olga = await core.catalogue.create_staff(name="Olga")
    shave = await core.catalogue.add_service(
        name="Shave", duration_minutes=30, owner_name="Ivan", owner_telegram_id=42
    )
    assert (await core.catalogue.get_staff(owner.id)).service_ids == (cut.id, shave.id)
    assert (await core.catalogue.get_staff(olga.id)).service_ids == (shave.id,)
    assert len(await core.catalogue.team(owner_name="Ivan")) == 2


async def test_the_first_service_makes_the_owner_staff_providing_it(core: BookingCore) -> None:
    with pytest.raises(InvalidInput):  # no name to give the owner: nothing is half-written
        await core.catalogue.add_service(name="Haircut", duration_minutes=60, owner_name=" ")
    assert await core.catalogue.list_services(active_only=False) == []
    cut = await core.catalogue.add_service(
        name="Haircut", duration_minutes=60, price=1500, owner_name="Anna", owner_telegram_id=7
    )
    [anna] = await core.catalogue.list_staff(service_id=cut.id)
    assert anna.name == "Anna" and anna.telegram_user_id == 7


async def test_calendar_days_tell_fully_booked_from_closed(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    clock.now = moscow(MONDAY, 9)
    tuesday, wednesday, thursday = (MONDAY + timedelta(days=i) for i in (1, 2, 3))
    for member in (shop.ivan, shop.olga):
        await core.catalogue.set_working_hours(member.id, 2, [])  # Wednesdays off
    await core.catalogue.block_period(moscow(thursday, 0), moscow(thursday + timedelta(days=1), 0))
    for hour in range(9, 18):  # Tuesday: every start of both staff members is taken
        for member in (shop.ivan, shop.olga):
            other = await core.customers.register(
                1000 + hour * 10 + member.sort_order, name="X", phone="+79161234567"
            )
            await core.bookings.book(
                customer_id=other.id,
                service_id=shop.service.id,
                start=moscow(tuesday, hour),
                staff_id=member.id,
                actor=Actor.owner(),
            )
    clock.now = moscow(MONDAY, 20)  # Monday's last start (17:00) has passed: closed, not full
    days = await core.slots.calendar_days(shop.service.id, day_from=MONDAY, days=5)
    assert days.free == {MONDAY + timedelta(days=4)}
    assert days.full == {tuesday}
    assert wednesday not in days.full and thursday not in days.full and MONDAY not in days.full


async def test_the_day_schedule_and_the_start_of_a_booking(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    anna = await core.customers.register(1, name="Anna", phone="+79161234567")
    boris = await core.customers.register(2, name="Boris", phone="+79161234568")
    kept = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 12)
    )
    dropped = await core.bookings.book(
        customer_id=boris.id, service_id=shop.service.id, start=moscow(MONDAY, 13)
    )
    await core.bookings.cancel(dropped.id, actor=Actor.owner())
    schedule = await core.bookings.day_schedule(MONDAY)
    assert [d.booking.id for d in schedule.booked] == [kept.id]
    assert [d.booking.id for d in schedule.cancelled] == [dropped.id]

    assert not kept.awaits_outcome(moscow(MONDAY, 11, 59))
    assert kept.awaits_outcome(moscow(MONDAY, 12)) and kept.awaits_outcome(moscow(MONDAY, 14))
    cancelled = (await core.bookings.get(dropped.id)).booking
    assert not cancelled.awaits_outcome(moscow(MONDAY, 14))
