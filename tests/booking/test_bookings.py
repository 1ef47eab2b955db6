"""Booking rules on a real tenant schema: slots, booking, limits, notice, horizon, transitions."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tenant_bot.booking import Actor, BookingCore, BookingStatus, WorkInterval
from tenant_bot.booking.errors import (
    BeyondHorizon,
    Forbidden,
    Inactive,
    InvalidTransition,
    LimitReached,
    NotFound,
    OutsideWorkingHours,
    SlotBlocked,
    SlotTaken,
    StaffCannotServe,
    TooLate,
)
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


async def test_free_slots_for_one_staff_member(core: BookingCore, shop: Shop) -> None:
    slots = await core.slots.free_slots(shop.service.id, day_from=MONDAY, staff_id=shop.ivan.id)
    assert [s.start for s in slots][:2] == [moscow(MONDAY, 9), moscow(MONDAY, 9, 30)]
    assert slots[-1].start == moscow(MONDAY, 17)  # a 60-minute service must end by 18:00
    assert len(slots) == 17
    assert all(s.staff_id == shop.ivan.id for s in slots)


async def test_booking_takes_the_slot_and_its_overlaps(core: BookingCore, shop: Shop) -> None:
    anna = await core.customers.register(101, name="Anna", phone="8 (916) 123-45-67")
    assert anna.phone == "+79161234567"
    booking = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, 10),
        actor=Actor.customer(101),
    )
    assert booking.status is BookingStatus.CONFIRMED
    assert booking.ends_at - booking.starts_at == timedelta(hours=1)
    free = {
        s.start
        for s in await core.slots.free_slots(
            shop.service.id, day_from=MONDAY, staff_id=shop.ivan.id
        )
    }
    assert moscow(MONDAY, 9, 30) not in free and moscow(MONDAY, 10, 30) not in free
    assert moscow(MONDAY, 9) in free and moscow(MONDAY, 11) in free
    boris = await core.customers.register(102, name="Boris")
    with pytest.raises(SlotTaken) as caught:
        await core.bookings.book(
            customer_id=boris.id,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 10, 30),
        )
    assert caught.value.code == "slot_taken"


async def test_anyone_goes_to_the_least_booked_staff(core: BookingCore, shop: Shop) -> None:
    anna = await core.customers.register(101)
    first = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    assert first.staff_id == shop.ivan.id  # tie: display order
    second = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    assert second.staff_id == shop.olga.id  # Ivan is taken at 10:00
    slots = await core.slots.free_slots(shop.service.id, day_from=MONDAY)
    assert {s.staff_id for s in slots if s.start == moscow(MONDAY, 14)} == {shop.ivan.id}
    with pytest.raises(SlotTaken):
        await core.bookings.book(
            customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
        )


async def test_customer_rules(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101)
    book = core.bookings.book
    args = {"customer_id": anna.id, "service_id": shop.service.id, "staff_id": shop.ivan.id}
    clock.now = moscow(MONDAY, 9, 30)
    with pytest.raises(TooLate):
        await book(**args, start=moscow(MONDAY, 10))  # notice is 60 minutes
    with pytest.raises(OutsideWorkingHours):
        await book(**args, start=moscow(MONDAY, 10, 45))  # off the 30-minute grid
    with pytest.raises(OutsideWorkingHours):
        await book(**args, start=moscow(MONDAY, 17, 30))  # would end after 18:00
    with pytest.raises(BeyondHorizon):
        await book(**args, start=moscow(MONDAY + timedelta(days=30), 10))
    await core.catalogue.block_period(moscow(MONDAY, 12), moscow(MONDAY, 13), staff_id=shop.ivan.id)
    with pytest.raises(SlotBlocked):
        await book(**args, start=moscow(MONDAY, 12, 30))
    await core.catalogue.set_date_exception(MONDAY + timedelta(days=1))  # holiday for everyone
    with pytest.raises(OutsideWorkingHours):
        await book(**args, start=moscow(MONDAY + timedelta(days=1), 10))
    # the owner skips notice and grid, but not working hours
    owner_booking = await book(**args, start=moscow(MONDAY, 10, 45), actor=Actor.owner(1))
    assert owner_booking.status is BookingStatus.CONFIRMED


async def test_unknown_inactive_and_unqualified(core: BookingCore, shop: Shop) -> None:
    anna = await core.customers.register(101)
    other = await core.catalogue.create_service(name="Massage", duration_minutes=30)
    with pytest.raises(StaffCannotServe):
        await core.bookings.book(
            customer_id=anna.id,
            service_id=other.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 10),
        )
    with pytest.raises(NotFound):
        await core.bookings.book(customer_id=anna.id, service_id=999, start=moscow(MONDAY, 10))
    with pytest.raises(NotFound):
        await core.bookings.book(
            customer_id=999_999, service_id=shop.service.id, start=moscow(MONDAY, 10)
        )
    await core.catalogue.update_staff(shop.olga.id, active=False)
    with pytest.raises(Inactive):
        await core.bookings.book(
            customer_id=anna.id,
            service_id=shop.service.id,
            staff_id=shop.olga.id,
            start=moscow(MONDAY, 10),
        )
    await core.catalogue.update_service(shop.service.id, active=False)
    assert await core.slots.free_slots(shop.service.id, day_from=MONDAY) == []
    with pytest.raises(Inactive):
        await core.bookings.book(
            customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
        )


async def test_limit_and_idempotency(core: BookingCore, shop: Shop) -> None:
    await core.catalogue.update_settings(max_active_per_customer=2)
    anna = await core.customers.register(101)
    made = [
        await core.bookings.book(
            customer_id=anna.id,
            service_id=shop.service.id,
            start=moscow(MONDAY, h),
            idempotency_key=f"k{h}",
        )
        for h in (10, 11)
    ]
    again = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 10),
        idempotency_key="k10",
    )
    assert again.id == made[0].id
    with pytest.raises(LimitReached):
        await core.bookings.book(
            customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 12)
        )
    await core.bookings.cancel(made[0].id, actor=Actor.customer(101))
    third = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 12)
    )
    assert third.status is BookingStatus.CONFIRMED
    # the key still names the first (now cancelled) booking: a late repeat never creates a new one
    repeat = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 10),
        idempotency_key="k10",
    )
    assert repeat.id == made[0].id and repeat.status is BookingStatus.CANCELLED


async def test_state_machine_and_history(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    await core.catalogue.update_settings(confirmation_required=True)
    anna = await core.customers.register(101)
    booking = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 10),
        actor=Actor.customer(101),
    )
    assert booking.status is BookingStatus.PENDING
    owner = Actor.owner(7)
    with pytest.raises(Forbidden):
        await core.bookings.confirm(booking.id, actor=Actor.customer(101))
    with pytest.raises(InvalidTransition):
        await core.bookings.mark_done(booking.id, actor=owner)  # pending cannot become done
    assert (await core.bookings.confirm(booking.id, actor=owner)).status is BookingStatus.CONFIRMED
    with pytest.raises(InvalidTransition):
        await core.bookings.mark_done(booking.id, actor=owner)  # not started yet
    clock.now = moscow(MONDAY, 11, 5)
    done = await core.bookings.mark_done(booking.id, actor=owner)
    assert done.status is BookingStatus.DONE
    with pytest.raises(InvalidTransition):
        await core.bookings.cancel(booking.id, actor=owner)
    history = await core.bookings.history(booking.id)
    assert [(h.from_status, h.to_status, h.actor.value) for h in history] == [
        (None, BookingStatus.PENDING, "customer"),
        (BookingStatus.PENDING, BookingStatus.CONFIRMED, "owner"),
        (BookingStatus.CONFIRMED, BookingStatus.DONE, "owner"),
    ]
    assert history[1].actor_id == 7


async def test_cancel_rules(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101)
    await core.customers.register(102)
    booking = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 12)
    )
    with pytest.raises(Forbidden):
        await core.bookings.cancel(booking.id, actor=Actor.customer(102))
    clock.now = moscow(MONDAY, 10, 30)  # 90 minutes left, 120 needed
    with pytest.raises(TooLate):
        await core.bookings.cancel(booking.id, actor=Actor.customer(101))
    cancelled = await core.bookings.cancel(booking.id, actor=Actor.owner(), reason="ill")
    assert cancelled.status is BookingStatus.CANCELLED and cancelled.cancel_reason == "ill"
    assert cancelled.cancelled_by == "owner"
    assert (await core.bookings.cancel(booking.id, actor=Actor.owner())).id == booking.id
    with pytest.raises(NotFound):
        await core.bookings.cancel(424242, actor=Actor.owner())


async def test_reschedule(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101)
    boris = await core.customers.register(102)
    mine = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, 10),
    )
    theirs = await core.bookings.book(
        customer_id=boris.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, 12),
    )
    me = Actor.customer(101)
    # 30 minutes later overlaps the booking's own old time: allowed, it moves as one row
    moved = await core.bookings.reschedule(mine.id, new_start=moscow(MONDAY, 10, 30), actor=me)
    assert moved.id == mine.id and moved.starts_at == moscow(MONDAY, 10, 30)
    with pytest.raises(SlotTaken):
        await core.bookings.reschedule(mine.id, new_start=moscow(MONDAY, 11, 30), actor=me)
    assert (await core.bookings.get(mine.id)).booking.starts_at == moscow(MONDAY, 10, 30)
    other_staff = await core.bookings.reschedule(
        mine.id, new_start=moscow(MONDAY, 12), new_staff_id=shop.olga.id, actor=me
    )
    assert other_staff.staff_id == shop.olga.id
    with pytest.raises(Forbidden):
        await core.bookings.reschedule(theirs.id, new_start=moscow(MONDAY, 15), actor=me)
    clock.now = moscow(MONDAY, 10, 30)
    with pytest.raises(TooLate):
        await core.bookings.reschedule(mine.id, new_start=moscow(MONDAY, 16), actor=me)
    history = await core.bookings.history(mine.id)
    assert [h.to_starts_at for h in history] == [
        moscow(MONDAY, 10),
        moscow(MONDAY, 10, 30),
        moscow(MONDAY, 12),
    ]


async def test_buffers_keep_a_gap(core: BookingCore, shop: Shop) -> None:
    await core.catalogue.update_settings(buffer_after_minutes=15)
    anna = await core.customers.register(101)
    await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, 10),
    )
    free = {
        s.start
        for s in await core.slots.free_slots(
            shop.service.id, day_from=MONDAY, staff_id=shop.ivan.id
        )
    }
    assert moscow(MONDAY, 11) not in free and moscow(MONDAY, 11, 30) in free
    with pytest.raises(SlotTaken):
        await core.bookings.book(
            customer_id=anna.id,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 11),
            actor=Actor.owner(),
        )


async def test_capacity_seats(core: BookingCore, shop: Shop) -> None:
    yoga = await core.catalogue.create_service(name="Yoga", duration_minutes=60, capacity=3)
    await core.catalogue.set_staff_services(shop.ivan.id, [shop.service.id, yoga.id])
    people = [await core.customers.register(200 + i) for i in range(4)]
    seats = [
        (
            await core.bookings.book(
                customer_id=p.id,
                service_id=yoga.id,
                staff_id=shop.ivan.id,
                start=moscow(MONDAY, 10),
            )
        ).seat
        for p in people[:3]
    ]
    assert seats == [1, 2, 3]
    with pytest.raises(SlotTaken):
        await core.bookings.book(
            customer_id=people[3].id,
            service_id=yoga.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 10),
        )
    # a different session (another service or start) cannot overlap the class
    with pytest.raises(SlotTaken):
        await core.bookings.book(
            customer_id=people[3].id,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 10, 30),
            actor=Actor.owner(),
        )
    with pytest.raises(SlotTaken):
        await core.bookings.book(
            customer_id=people[3].id,
            service_id=yoga.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 10, 30),
            actor=Actor.owner(),
        )


async def test_lists(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101, name="Anna")
    booking = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    mine = await core.bookings.for_customer(anna.id)
    assert [d.booking.id for d in mine] == [booking.id]
    assert mine[0].service_name == "Haircut" and mine[0].customer_name == "Anna"
    assert [d.booking.id for d in await core.bookings.for_day(MONDAY)] == [booking.id]
    assert await core.bookings.for_day(MONDAY + timedelta(days=1)) == []
    assert [d.booking.id for d in await core.bookings.upcoming()] == [booking.id]
    clock.now = moscow(MONDAY, 12)
    assert await core.bookings.for_customer(anna.id) == []
    assert len(await core.bookings.for_customer(anna.id, include_past=True)) == 1


async def test_working_hours_with_a_break(core: BookingCore, shop: Shop) -> None:
    await core.catalogue.set_working_hours(
        shop.ivan.id,
        MONDAY.weekday(),
        [WorkInterval.parse("09:00-12:00"), WorkInterval.parse("13:00-15:00")],
    )
    starts = [
        s.start
        for s in await core.slots.free_slots(
            shop.service.id, day_from=MONDAY, staff_id=shop.ivan.id
        )
    ]
    assert moscow(MONDAY, 11) in starts and moscow(MONDAY, 11, 30) not in starts
    assert moscow(MONDAY, 12) not in starts and moscow(MONDAY, 13) in starts
    assert starts[-1] == moscow(MONDAY, 14)


async def test_catalogue_cache_never_books_against_stale_rules(
    core: BookingCore, shop: Shop, tenant_pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """Another process (another BookingCore) edits the catalogue; this one must notice at once."""
    other = BookingCore(tenant_pool, clock=clock)
    anna = await core.customers.register(101)
    args = {"customer_id": anna.id, "service_id": shop.service.id, "staff_id": shop.ivan.id}
    await core.bookings.book(**args, start=moscow(MONDAY, 9))  # loads this core's cache
    await other.catalogue.set_date_exception(
        MONDAY, [WorkInterval.parse("09:00-10:00")], staff_id=shop.ivan.id
    )
    with pytest.raises(OutsideWorkingHours):
        await core.bookings.book(**args, start=moscow(MONDAY, 12))
    await other.catalogue.block_period(
        moscow(MONDAY + timedelta(days=1), 9), moscow(MONDAY + timedelta(days=1), 18)
    )
    with pytest.raises(SlotBlocked):
        await core.bookings.book(**args, start=moscow(MONDAY + timedelta(days=1), 12))
    await other.catalogue.update_service(shop.service.id, active=False)
    with pytest.raises(Inactive):
        await core.bookings.book(**args, start=moscow(MONDAY + timedelta(days=2), 12))


async def test_purged_idempotency_key_books_anew(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    anna = await core.customers.register(101)
    first = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 10),
        idempotency_key="d1",
    )
    assert await core.bookings.purge_idempotency_keys(older_than=timedelta(days=7)) == 0
    clock.advance(timedelta(hours=1))
    assert await core.bookings.purge_idempotency_keys(older_than=timedelta(minutes=30)) == 1
    again = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 11),
        idempotency_key="d1",
    )
    assert again.id != first.id
    repeat = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 12),
        idempotency_key="d1",
    )
    assert repeat.id == again.id
