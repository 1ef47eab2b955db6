"""Reviews in the booking core: one request per visit marked "came" (never a no-show), claimed once
by concurrent senders, the first rating wins, hiding moves the ratings, and ratings show only past
the owner's threshold."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tenant_bot.booking import Actor, BookingCore
from tenant_bot.booking.models import Booking
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow

OWNER = Actor.owner(1)


async def _visit(
    core: BookingCore, shop: Shop, telegram_id: int, hour: int, *, staff: int
) -> Booking:
    customer = await core.customers.register(telegram_id, name=f"C{telegram_id}")
    booking = await core.bookings.book(
        customer_id=customer.id,
        service_id=shop.service.id,
        staff_id=staff,
        start=moscow(MONDAY, hour),
    )
    await core.bookings.confirm(booking.id, actor=OWNER)
    return booking


async def test_request_per_visit_marked_came_never_no_show(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    came = await _visit(core, shop, 201, 10, staff=shop.ivan.id)
    missed = await _visit(core, shop, 202, 11, staff=shop.ivan.id)
    clock.now = moscow(MONDAY, 10, 30)  # during the visit: the request waits for its end
    await core.bookings.mark_done(came.id, actor=OWNER)
    assert await core.reviews.request_status(came.id) == "pending"
    assert await core.reviews.next_due() == came.ends_at
    assert await core.reviews.claim(worker="a") is None  # not due before the booking ends
    clock.now = moscow(MONDAY, 12, 30)
    await core.bookings.mark_no_show(missed.id, actor=OWNER)
    assert await core.reviews.request_status(missed.id) is None

    # many senders at once: exactly one claims it
    claims = await asyncio.gather(*(core.reviews.claim(worker=f"w{i}") for i in range(12)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].details.booking.id == came.id
    assert await core.reviews.settle(won[0], sent=True)
    assert await core.reviews.request_status(came.id) == "sent"
    assert await core.reviews.claim(worker="a") is None


async def test_passing_fault_retried_interrupted_set_aside(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    first = await _visit(core, shop, 211, 10, staff=shop.ivan.id)
    second = await _visit(core, shop, 212, 10, staff=shop.olga.id)
    clock.now = moscow(MONDAY, 12)
    await core.bookings.mark_done(first.id, actor=OWNER)
    await core.bookings.mark_done(second.id, actor=OWNER)
    request = await core.reviews.claim(worker="a")
    assert request is not None
    await core.reviews.settle(
        request, sent=False, error="429", retry_at=clock() + timedelta(minutes=1)
    )
    other = await core.reviews.claim(worker="a")  # the other one; the first waits for its retry
    assert other is not None and other.details.booking.id != request.details.booking.id
    # the sender of ``other`` dies mid-send: after a while it is set aside, never sent again
    clock.advance(timedelta(minutes=10))
    assert await core.reviews.prepare() == (0, 1)
    assert await core.reviews.request_status(other.details.booking.id) == "failed"
    again = await core.reviews.claim(worker="b")
    assert again is not None and again.details.booking.id == request.details.booking.id
    assert again.attempts == 2
    assert await core.reviews.claim(worker="b") is None


async def test_ratings_threshold_hide_and_first_rating_wins(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    await core.reviews.update_settings(review_min_count=2)
    visits = [
        await _visit(core, shop, 300 + i, 10 + i, staff=shop.ivan.id if i < 2 else shop.olga.id)
        for i in range(3)
    ]
    clock.now = moscow(MONDAY, 15)
    for visit in visits:
        await core.bookings.mark_done(visit.id, actor=OWNER)
    assert (await core.reviews.ratings()).business is None

    # a stranger cannot rate someone else's visit; the first tap wins over concurrent ones
    assert await core.reviews.rate(visits[0].id, customer_telegram_id=999, stars=1) is None
    taps = await asyncio.gather(
        *(core.reviews.rate(visits[0].id, customer_telegram_id=300, stars=s) for s in (5, 4, 3))
    )
    assert len([t for t in taps if t is not None]) == 1
    assert (await core.reviews.ratings()).business is None  # one review, threshold two

    await core.reviews.rate(visits[1].id, customer_telegram_id=301, stars=3)
    await core.reviews.rate(visits[2].id, customer_telegram_id=302, stars=5)
    first = await core.reviews.get(visits[0].id)
    assert first is not None
    ratings = await core.reviews.ratings()
    assert ratings.business is not None and ratings.business.count == 3
    assert abs(ratings.business.average - (first.stars + 3 + 5) / 3) < 1e-9
    assert set(ratings.staff) == {shop.ivan.id}  # Olga has one review: below the threshold

    comment = await core.reviews.comment(visits[1].id, customer_telegram_id=301, text=" Good ")
    assert comment is not None and comment.comment == "Good"
    assert await core.reviews.comment(visits[1].id, customer_telegram_id=301, text="x") is None

    hidden = await core.reviews.hide(visits[1].id)
    assert hidden is not None and hidden.hidden
    await core.reviews.hide(visits[1].id)  # twice: counted once
    ratings = await core.reviews.ratings()
    assert ratings.business is not None and ratings.business.count == 2
    assert shop.ivan.id not in ratings.staff
    await core.reviews.hide(visits[1].id, hidden=False)
    ratings = await core.reviews.ratings()
    assert ratings.business is not None and ratings.business.count == 3
    assert ratings.staff[shop.ivan.id].count == 2

    # reviews turned off: due requests are skipped, not sent
    await core.reviews.update_settings(reviews_enabled=False)
    late = await _visit(core, shop, 310, 16, staff=shop.ivan.id)
    clock.now = moscow(MONDAY, 18)
    await core.bookings.mark_done(late.id, actor=OWNER)
    skipped, _ = await core.reviews.prepare()
    assert skipped >= 1
    assert await core.reviews.request_status(late.id) == "skipped"
