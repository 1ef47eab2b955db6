"""Waitlist and completion: who hears about a freed time, and which ended bookings await the owner."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tenant_bot.booking import Actor, BookingCore, BookingStatus
from tenant_bot.booking.errors import NotFound, SlotTaken
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


async def test_waitlist_flow(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna, boris, vera, gleb = [await core.customers.register(100 + i) for i in range(4)]
    booking = await core.bookings.book(
        customer_id=anna.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, 10),
    )
    first = await core.waitlist.join(customer_id=boris.id, service_id=shop.service.id, day=MONDAY)
    clock.advance(timedelta(seconds=1))
    again = await core.waitlist.join(customer_id=boris.id, service_id=shop.service.id, day=MONDAY)
    assert again.id == first.id  # joining twice is harmless
    await core.waitlist.join(
        customer_id=vera.id, service_id=shop.service.id, day=MONDAY, staff_id=shop.ivan.id
    )
    await core.waitlist.join(
        customer_id=gleb.id, service_id=shop.service.id, day=MONDAY, staff_id=shop.olga.id
    )
    await core.waitlist.join(
        customer_id=gleb.id, service_id=shop.service.id, day=MONDAY + timedelta(days=1)
    )
    assert [e.day for e in await core.waitlist.for_customer(gleb.id)] == [
        MONDAY,
        MONDAY + timedelta(days=1),
    ]

    cancelled = await core.bookings.cancel(booking.id, actor=Actor.customer(100))
    candidates = await core.waitlist.candidates_for(cancelled)
    # oldest first; Gleb waits for Olga (not the freed staff) or for another day
    assert [c.customer_id for c in candidates] == [boris.id, vera.id]
    assert candidates[0].customer_telegram_id == 101

    # the first to book wins; the loser gets SlotTaken; the winner's wish is fulfilled
    won = await core.bookings.book(
        customer_id=vera.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, 10),
    )
    with pytest.raises(SlotTaken):
        await core.bookings.book(
            customer_id=boris.id,
            service_id=shop.service.id,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, 10),
        )
    assert await core.waitlist.for_customer(vera.id) == []
    assert [e.customer_id for e in await core.waitlist.candidates_for(won)] == [boris.id]
    await core.waitlist.leave(first.id, customer_id=boris.id)
    with pytest.raises(NotFound):
        await core.waitlist.leave(first.id, customer_id=boris.id)
    clock.now = moscow(MONDAY, 11)
    assert await core.waitlist.candidates_for(won) == []  # a past time frees nothing


async def test_completion(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101)
    first = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    second = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 12)
    )
    assert await core.completion.awaiting() == []
    clock.now = moscow(MONDAY, 11, 0)
    assert [d.booking.id for d in await core.completion.awaiting()] == [first.id]
    [prompt] = await core.completion.claim_prompts()
    assert prompt.booking.id == first.id
    assert await core.completion.claim_prompts() == []  # each booking is put to the owner once
    clock.now = moscow(MONDAY, 14)
    assert [d.booking.id for d in await core.completion.claim_prompts()] == [second.id]
    owner = Actor.owner(1)
    await core.bookings.mark_done(first.id, actor=owner)
    no_show = await core.bookings.mark_no_show(second.id, actor=owner)
    assert no_show.status is BookingStatus.NO_SHOW
    assert await core.completion.awaiting() == []
