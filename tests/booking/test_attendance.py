"""Reminders that ask (issue 19): offsets changed for bookings ahead, each (booking, offset) sent
once under racing claimers, the customer's "I'll come", releasing unconfirmed bookings; no-show
memory: counts, the block rule, the deposit decision."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import asyncpg
import pytest

from tenant_bot.booking import Actor, BookingCore, BookingStatus
from tenant_bot.booking.errors import (
    CustomerBlocked,
    Forbidden,
    InvalidInput,
    InvalidTransition,
)
from tenant_bot.booking.repositories import reminders as reminders_repo
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow

WEDNESDAY = MONDAY + timedelta(days=2)


async def _offsets(pool: asyncpg.Pool, booking_id: int) -> dict[int, str]:
    async with pool.acquire() as conn:
        rows = await reminders_repo.for_booking(conn, booking_id)
    return {r["offset_minutes"]: r["status"] for r in rows}


async def _send_due(core: BookingCore, name: str = "a") -> list[tuple[int, int]]:
    sent = []
    while batch := await core.reminders.claim_due(worker=name):
        for reminder in batch:
            assert await core.reminders.mark_sent(reminder.id, reminder.claim_token)
            sent.append((reminder.details.booking.id, reminder.offset_minutes))
    return sent


async def test_changing_offsets_rearms_bookings_ahead_without_repeats(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    anna = await core.customers.register(101)
    booking = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(WEDNESDAY, 12)
    )
    assert await _offsets(tenant_pool, booking.id) == {1440: "pending", 120: "pending"}
    clock.now = moscow(WEDNESDAY - timedelta(days=1), 12, 1)  # the 24 h reminder is due
    assert await _send_due(core) == [(booking.id, 1440)]

    # 24 h (already sent), 3 h (new) and 1 h (new); 2 h dropped
    await core.catalogue.update_settings(reminder_offsets_minutes=[1440, 180, 60])
    assert await _offsets(tenant_pool, booking.id) == {1440: "sent", 180: "pending", 60: "pending"}
    clock.now = moscow(WEDNESDAY, 11, 5)  # 3 h and 1 h both due now
    assert sorted(await _send_due(core)) == [(booking.id, 60), (booking.id, 180)]
    assert await _send_due(core) == []

    # an offset whose time has passed is not armed; one dropped and re-added comes back
    later = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(WEDNESDAY, 16)
    )
    await core.catalogue.update_settings(reminder_offsets_minutes=[1440])
    assert await _offsets(tenant_pool, later.id) == {}  # 24 h before 16:00 is past
    await core.catalogue.update_settings(reminder_offsets_minutes=[120, 240])
    assert await _offsets(tenant_pool, later.id) == {240: "pending", 120: "pending"}


async def test_offsets_changed_while_many_claimers_race_each_sent_once(
    core: BookingCore, shop: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    quick = await core.catalogue.create_service(name="Trim", duration_minutes=30)
    for member in (shop.ivan, shop.olga):
        await core.catalogue.set_staff_services(member.id, [quick.id])
    people = [await core.customers.register(500 + i) for i in range(24)]
    for i, p in enumerate(people):
        await core.bookings.book(
            customer_id=p.id,
            service_id=quick.id,
            staff_id=(shop.ivan, shop.olga)[i % 2].id,
            start=moscow(WEDNESDAY, 9) + timedelta(minutes=30 * (i // 2)),
        )
    clock.now = moscow(WEDNESDAY, 7, 30)  # 24 h reminders due, 2 h ones for the first hours
    sent: Counter[tuple[int, int]] = Counter()

    async def claimer(name: str) -> None:
        for _ in range(40):
            for reminder in await core.reminders.claim_due(worker=name, limit=2):
                await asyncio.sleep(0)
                if await core.reminders.mark_sent(reminder.id, reminder.claim_token):
                    sent[(reminder.details.booking.id, reminder.offset_minutes)] += 1
            await asyncio.sleep(0)

    async def owner() -> None:
        for offsets in ([1440, 120, 90], [1440, 90], [1440, 120, 90]):
            await core.catalogue.update_settings(reminder_offsets_minutes=offsets)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(claimer(n) for n in "abcd"), owner())
    await asyncio.gather(*(claimer(n) for n in "ef"))
    assert sent and set(sent.values()) == {1}
    rows = await tenant_pool.fetch(
        "SELECT booking_id, offset_minutes, count(*) AS n FROM reminders WHERE status = 'sent'"
        " GROUP BY 1, 2"
    )
    assert {(r["booking_id"], r["offset_minutes"]) for r in rows} == set(sent)


async def test_offsets_and_release_validated(core: BookingCore, shop: Shop) -> None:
    with pytest.raises(InvalidInput) as bad:
        await core.catalogue.update_settings(reminder_offsets_minutes=[0])
    assert bad.value.field == "reminder_offsets_minutes"
    with pytest.raises(InvalidInput) as bad:
        await core.catalogue.update_settings(release_unconfirmed_hours=24)  # first reminder: 24 h
    assert bad.value.field == "release_unconfirmed_hours"
    await core.catalogue.update_settings(release_unconfirmed_hours=3)
    with pytest.raises(InvalidInput):  # the reminders would all come after the release
        await core.catalogue.update_settings(reminder_offsets_minutes=[120])
    with pytest.raises(InvalidInput):
        await core.catalogue.update_settings(no_show_action="ban")
    with pytest.raises(InvalidInput):
        await core.catalogue.update_settings(no_show_threshold=0)
    settings = await core.catalogue.get_settings()
    assert settings.release_unconfirmed_hours == 3
    assert settings.reminder_offsets_minutes == (1440, 120)


async def test_confirm_attendance_idempotent_and_checked(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    anna = await core.customers.register(101)
    await core.customers.register(102)
    booking = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(WEDNESDAY, 12)
    )
    with pytest.raises(Forbidden):
        await core.attendance.confirm(booking.id, actor=Actor.customer(102))
    results = await asyncio.gather(
        *(core.attendance.confirm(booking.id, actor=Actor.customer(101)) for _ in range(8))
    )
    assert len({r.customer_confirmed_at for r in results}) == 1
    assert results[0].customer_confirmed_at == clock.now
    history = await core.bookings.history(booking.id)
    assert [h.reason for h in history].count("confirmed they will come") == 1
    details = await core.bookings.get(booking.id)
    assert details.booking.customer_confirmed_at == clock.now
    await core.bookings.cancel(booking.id, actor=Actor.customer(101))
    with pytest.raises(InvalidTransition):
        await core.attendance.confirm(booking.id, actor=Actor.customer(101))


async def test_release_only_reminded_and_silent_bookings(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    people = [await core.customers.register(200 + i) for i in range(3)]
    silent, answered, unreminded = [
        await core.bookings.book(
            customer_id=p.id,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(WEDNESDAY, 10 + 2 * i),
        )
        for i, p in enumerate(people)
    ]
    await core.catalogue.update_settings(release_unconfirmed_hours=3)
    assert await core.attendance.release_due() == []
    clock.now = moscow(WEDNESDAY - timedelta(days=1), 12, 30)  # 24 h reminders of 10:00 and 12:00
    await _send_due(core)
    await core.attendance.confirm(answered.id, actor=Actor.customer(201))
    # the third's reminder was never delivered (failed): it is not released
    clock.now = moscow(WEDNESDAY - timedelta(days=1), 14, 30)
    [claimed] = await core.reminders.claim_due()
    await core.reminders.mark_failed(claimed.id, claimed.claim_token, error="blocked")
    clock.now = moscow(WEDNESDAY, 6, 59)  # not yet 3 h before 10:00
    assert await core.attendance.release_due() == []
    clock.now = moscow(WEDNESDAY, 7, 1)  # 3 h before 10:00
    [released] = await core.attendance.release_due()
    assert released.booking.id == silent.id
    assert released.booking.status is BookingStatus.CANCELLED
    assert released.booking.cancelled_by == "system"
    assert await core.attendance.release_due() == []  # once
    clock.now = moscow(WEDNESDAY, 11, 30)  # past 3 h before 12:00 and 14:00
    assert await core.attendance.release_due() == []
    assert (await core.bookings.get(answered.id)).booking.status.active
    assert (await core.bookings.get(unreminded.id)).booking.status.active


async def test_release_races_confirmation(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    """Many bookings, the customer tapping "I'll come" while two releasers run: each booking ends
    either confirmed and active or released, never both."""
    quick = await core.catalogue.create_service(name="Trim", duration_minutes=30)
    for member in (shop.ivan, shop.olga):
        await core.catalogue.set_staff_services(member.id, [quick.id])
    people = [await core.customers.register(700 + i) for i in range(16)]
    bookings = [
        await core.bookings.book(
            customer_id=p.id,
            service_id=quick.id,
            staff_id=(shop.ivan, shop.olga)[i % 2].id,
            start=moscow(WEDNESDAY, 13) + timedelta(minutes=30 * (i // 2)),
        )
        for i, p in enumerate(people)
    ]
    await core.catalogue.update_settings(release_unconfirmed_hours=2)
    clock.now = moscow(WEDNESDAY - timedelta(days=1), 18)
    await _send_due(core)
    clock.now = moscow(WEDNESDAY, 11, 10)  # every release time has come

    async def tap(booking_id: int, telegram_id: int) -> bool:
        try:
            await core.attendance.confirm(booking_id, actor=Actor.customer(telegram_id))
            return True
        except InvalidTransition:
            return False

    outcome = await asyncio.gather(
        core.attendance.release_due(limit=3),
        core.attendance.release_due(limit=5),
        *(tap(b.id, 700 + i) for i, b in enumerate(bookings)),
    )
    released_ids = [d.booking.id for batch in outcome[:2] for d in batch]  # type: ignore[union-attr]
    released_ids += [d.booking.id for d in await core.attendance.release_due()]
    confirmed = {b.id for b, ok in zip(bookings, outcome[2:], strict=True) if ok}
    assert len(released_ids) == len(set(released_ids))
    assert set(released_ids) | confirmed == {b.id for b in bookings}
    assert not set(released_ids) & confirmed
    for booking in bookings:
        status = (await core.bookings.get(booking.id)).booking.status
        assert status.active == (booking.id in confirmed)


async def test_no_show_count_block_and_deposit(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    anna = await core.customers.register(101)
    boris = await core.customers.register(102)
    for day in range(2):
        start = moscow(MONDAY + timedelta(days=day), 10)
        booking = await core.bookings.book(
            customer_id=anna.id, service_id=shop.service.id, start=start, actor=Actor.owner()
        )
        clock.now = start + timedelta(minutes=70)
        await core.bookings.mark_no_show(booking.id, actor=Actor.owner())
    assert await core.no_shows.count(anna.id) == 2
    assert await core.no_shows.count(boris.id) == 0
    assert not await core.no_shows.requires_deposit(anna.id)  # the rule is off
    await core.catalogue.update_settings(no_show_action="deposit", no_show_threshold=2)
    assert await core.no_shows.requires_deposit(anna.id)
    assert not await core.no_shows.requires_deposit(boris.id)
    start = moscow(MONDAY + timedelta(days=5), 10)
    await core.bookings.book(customer_id=anna.id, service_id=shop.service.id, start=start)

    await core.catalogue.update_settings(no_show_action="block", no_show_threshold=2)
    assert not await core.no_shows.requires_deposit(anna.id)
    assert (await core.no_shows.standing(anna.id)).blocked
    with pytest.raises(CustomerBlocked) as blocked:
        await core.bookings.book(
            customer_id=anna.id, service_id=shop.service.id, start=start + timedelta(hours=2)
        )
    assert blocked.value.details == {"no_shows": 2}
    await core.bookings.book(  # others book; the owner still books for her
        customer_id=boris.id, service_id=shop.service.id, start=start + timedelta(hours=2)
    )
    await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        start=start + timedelta(hours=4),
        actor=Actor.owner(),
    )
    await core.catalogue.update_settings(no_show_threshold=3)
    await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=start + timedelta(hours=6)
    )


async def test_a_moved_booking_is_asked_again_before_it_can_be_released(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    anna = await core.customers.register(101)
    booking = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(WEDNESDAY, 10),
    )
    await core.catalogue.update_settings(release_unconfirmed_hours=3)
    clock.now = moscow(WEDNESDAY - timedelta(days=1), 10, 1)
    assert await _send_due(core) == [(booking.id, 1440)]
    await core.attendance.confirm(booking.id, actor=Actor.customer(101))
    # the owner moves it to 11:00: the 24 h reminder of 10:00 was about another time, and the
    # customer's "I'll come" too; the new 24 h one is still ahead
    moved = await core.bookings.reschedule(
        booking.id, new_start=moscow(WEDNESDAY, 11), actor=Actor.owner()
    )
    assert moved.customer_confirmed_at is None
    clock.now = moscow(WEDNESDAY - timedelta(days=1), 10, 30)
    await core.bookings.reschedule(  # and again, to 10:30: its 24 h time has passed
        booking.id, new_start=moscow(WEDNESDAY, 10, 30), actor=Actor.owner()
    )
    clock.now = moscow(WEDNESDAY, 8)  # past 3 h before 10:30, never reminded of 10:30
    assert await core.attendance.release_due() == []
    clock.now = moscow(WEDNESDAY, 8, 31)  # the 2 h reminder of 10:30: after the release time
    assert await _send_due(core) == [(booking.id, 120)]
    assert await core.attendance.release_due() == []
    assert (await core.bookings.get(booking.id)).booking.status.active
