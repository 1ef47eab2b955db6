"""Mailings in the booking core: audiences counted independently, one mailing per confirmation,
one sending lease per tenant, each recipient claimed once, opt-outs honoured, interrupted sends
set aside."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tenant_bot.booking import Actor, BookingCore
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.outreach import RecipientState
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow

OWNER = Actor.owner(1)


async def _people(core: BookingCore, shop: Shop, clock: FakeClock) -> dict[str, int]:
    """Customers with known histories; returns name -> telegram id."""
    ids = {"never": 401, "recent": 402, "lapsed": 403, "noshow": 404, "lapsed_booked": 405}
    customers = {name: await core.customers.register(tg, name=name) for name, tg in ids.items()}
    second = await core.catalogue.create_service(name="Beard", duration_minutes=30, price=500)
    await core.catalogue.set_staff_services(shop.ivan.id, [shop.service.id, second.id])

    async def visit(name: str, hour: int, *, came: bool, service: int = shop.service.id) -> None:
        booking = await core.bookings.book(
            customer_id=customers[name].id,
            service_id=service,
            staff_id=shop.ivan.id,
            start=moscow(MONDAY, hour),
            actor=OWNER,
        )
        await core.bookings.confirm(booking.id, actor=OWNER)
        clock.now = moscow(MONDAY, 23)
        await (core.bookings.mark_done if came else core.bookings.mark_no_show)(
            booking.id, actor=OWNER
        )

    await visit("lapsed", 10, came=True)
    await visit("lapsed_booked", 11, came=True, service=second.id)
    await visit("noshow", 12, came=False)
    clock.now += timedelta(days=60)
    day = (clock.now + timedelta(hours=3)).date()
    booking = await core.bookings.book(
        customer_id=customers["recent"].id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(day, 10) - timedelta(days=1),
        actor=OWNER,
    )
    await core.bookings.confirm(booking.id, actor=OWNER)  # ended, never marked: still a visit
    await core.bookings.book(  # lapsed_booked has a visit ahead: not lost
        customer_id=customers["lapsed_booked"].id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(day, 15) + timedelta(days=2),
        actor=OWNER,
    )
    return ids


async def test_audiences(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    await _people(core, shop, clock)
    b = core.broadcasts
    assert await b.count(b.audience("all")) == 5
    assert await b.count(b.audience("recent", days=30)) == 1
    assert await b.count(b.audience("recent", days=90)) == 3
    assert await b.count(b.audience("lapsed", days=30)) == 1  # lapsed, not lapsed_booked
    assert await b.count(b.audience("service", service_id=shop.service.id)) == 4
    with pytest.raises(InvalidInput):
        b.audience("lapsed", days=0)
    with pytest.raises(InvalidInput):
        b.audience("everyone")
    assert await b.opt_out(403)
    assert await b.count(b.audience("lapsed", days=30)) == 0
    assert not await b.opt_out(999)  # not a customer


async def test_send_steps_once_each(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    ids = await _people(core, shop, clock)
    b = core.broadcasts
    choice = b.audience("all")
    created = await asyncio.gather(
        *(
            b.create(draft_key="d1", text="Hi", photo_file_id=None, choice=choice, created_by=1)
            for _ in range(5)
        )
    )
    assert sum(new for _, new in created) == 1
    mailing = created[0][0]
    assert mailing.recipients == 5

    # one lease at a time
    leases = await asyncio.gather(*(b.acquire(worker=f"w{i}") for i in range(8)))
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 1
    lease = held[0]
    assert await b.acquire(worker="x") is None
    renewed = await b.acquire(token=lease.token)
    assert renewed is not None

    due = await b.due(lease)
    assert len(due) == 5
    await b.opt_out(ids["never"])  # opted out after the confirmation: skipped
    states = await asyncio.gather(*(b.claim(lease, r) for r in due for _ in range(3)))
    assert sorted(s for s in states if s is not None) == ["sending"] * 4 + ["skipped"]
    sending = [r for r in due if r.chat_id != ids["never"]]
    await b.settle(lease, sending[0], state=RecipientState.SENT)
    await b.settle(lease, sending[1], state=RecipientState.BLOCKED, error="Forbidden")
    await b.settle(
        lease, sending[2], state=RecipientState.PENDING, retry_at=clock() + timedelta(seconds=5)
    )
    assert not await b.finish(lease)
    # the holder dies with sending[3] mid-send; its lease runs out; another sender takes over
    clock.advance(timedelta(minutes=2))
    other = await b.acquire(worker="other")
    assert other is not None and other.token != lease.token
    counts = await b.counts(mailing.id)
    assert (counts.sent, counts.blocked, counts.failed, counts.skipped, counts.pending) == (
        1,
        1,
        1,
        1,
        1,
    )
    again = await b.due(other)
    assert [r.customer_id for r in again] == [sending[2].customer_id]
    assert await b.claim(other, again[0]) == "sending"
    await b.settle(other, again[0], state=RecipientState.SENT)
    assert await b.finish(other)
    assert await b.claim_report(mailing.id)
    assert not await b.claim_report(mailing.id)
    assert await b.acquire(worker="x") is None  # nothing left to send
