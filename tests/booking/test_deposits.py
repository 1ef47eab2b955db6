"""Deposits in the booking core (issue 19): holds, pre-checkout checks, payments applied once,
expiry exactly once, the cancellation policy, and many concurrent attempts."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest

from tenant_bot.booking import Actor, BookingCore, BookingStatus, DepositKind, DepositRule
from tenant_bot.booking.deposits import to_minor
from tenant_bot.booking.errors import BookingError, InvalidInput
from tenant_bot.booking.models import PaymentState
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


@pytest.fixture
async def deposits(core: BookingCore, shop: Shop) -> Shop:
    """The shop takes a 500 deposit for its haircut, holding a seat 15 minutes."""
    await core.deposits.update_settings(provider_token="v1:test:sealed", hold_minutes=15)
    await core.deposits.set_rule(shop.service.id, DepositRule(DepositKind.FIXED, Decimal(500)))
    return shop


async def _book(core: BookingCore, shop: Shop, telegram_id: int, *, hour: int = 10, **kw):
    customer = await core.customers.register(telegram_id)
    return await core.bookings.book(
        customer_id=customer.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=moscow(MONDAY, hour),
        actor=Actor.customer(telegram_id),
        **kw,
    )


async def _pay(core: BookingCore, booking_id: int, charge: str = "ch-1"):
    return await core.deposits.record_payment(
        booking_id,
        amount_minor=50000,
        currency="RUB",
        telegram_charge_id=charge,
        provider_charge_id=f"yk-{charge}",
    )


def test_rules_amounts_and_checks() -> None:
    price = Decimal(1500)
    assert DepositRule().amount(price) == 0
    assert DepositRule(DepositKind.FIXED, Decimal(500)).amount(price) == Decimal("500.00")
    assert DepositRule(DepositKind.FIXED, Decimal(5000)).amount(price) == price  # capped
    assert DepositRule(DepositKind.PERCENT, Decimal(30)).amount(price) == Decimal("450.00")
    assert DepositRule.full().amount(price) == price
    for bad in (Decimal(0), Decimal(101)):
        with pytest.raises(InvalidInput):
            DepositRule(DepositKind.PERCENT, bad)
    with pytest.raises(InvalidInput):
        DepositRule(DepositKind.FIXED, Decimal(0))
    assert to_minor(Decimal("450.50")) == 45050


async def test_without_a_provider_a_deposit_service_books_as_ever(core: BookingCore, shop: Shop):
    await core.deposits.set_rule(shop.service.id, DepositRule.full())
    booking = await _book(core, shop, 1)
    assert booking.status is BookingStatus.CONFIRMED and booking.payment is PaymentState.NONE
    assert core.deposits.quote(shop.service, await core.deposits.settings()) == 0


async def test_hold_pay_confirm_and_repeats(core: BookingCore, deposits: Shop, clock: FakeClock):
    booking = await _book(core, deposits, 1)
    assert booking.status is BookingStatus.PENDING and booking.awaits_payment
    assert booking.deposit == Decimal("500.00")
    assert booking.hold_until == clock() + timedelta(minutes=15)
    # the seat is taken while held
    with pytest.raises(BookingError) as taken:
        await _book(core, deposits, 2)
    assert taken.value.code == "slot_taken"
    assert await core.deposits.check_payable(booking.id, amount_minor=1, currency="RUB") == "amount"
    ok = await core.deposits.check_payable(booking.id, amount_minor=50000, currency="RUB")
    assert ok == "ok"
    paid = await _pay(core, booking.id)
    assert paid.outcome == "confirmed"
    assert paid.booking.status is BookingStatus.CONFIRMED
    assert paid.booking.payment is PaymentState.PAID and paid.booking.paid_amount == 500
    again = await _pay(core, booking.id)
    assert again.outcome == "repeat" and again.booking.paid_amount == 500
    assert (
        await core.deposits.check_payable(booking.id, amount_minor=50000, currency="RUB") == "paid"
    )
    history = await core.bookings.history(booking.id)
    assert [h.to_status for h in history] == [BookingStatus.PENDING, BookingStatus.CONFIRMED]
    # an owner-made booking never asks a deposit
    customer = await core.customers.register(3)
    by_owner = await core.bookings.book(
        customer_id=customer.id,
        service_id=deposits.service.id,
        staff_id=deposits.ivan.id,
        start=moscow(MONDAY, 12),
        actor=Actor.owner(99),
    )
    assert by_owner.payment is PaymentState.NONE and by_owner.status is BookingStatus.CONFIRMED


async def test_override_imposes_or_waives_a_deposit(core: BookingCore, deposits: Shop) -> None:
    waived = await _book(core, deposits, 1, deposit_rule=DepositRule())
    assert waived.payment is PaymentState.NONE
    full = await _book(core, deposits, 2, hour=12, deposit_rule=DepositRule.full())
    assert full.deposit == Decimal("1500.00") and full.awaits_payment


async def test_hold_expires_exactly_once(
    core: BookingCore, deposits: Shop, clock: FakeClock, tenant_pool: asyncpg.Pool
) -> None:
    booking = await _book(core, deposits, 1)
    clock.advance(timedelta(minutes=15))
    assert (
        await core.deposits.check_payable(booking.id, amount_minor=50000, currency="RUB")
        == "expired"
    )
    # ten loops at once (processes, restarts): each hold is expired by exactly one of them
    results = await asyncio.gather(*(core.deposits.expire_holds() for _ in range(10)))
    assert sorted(len(r) for r in results) == [0] * 9 + [1]
    gone = (await core.bookings.get(booking.id)).booking
    assert gone.status is BookingStatus.CANCELLED and gone.payment is PaymentState.RELEASED
    assert [b.id for b in await core.deposits.pending_releases()] == [booking.id]
    await core.deposits.release_done(booking.id)
    assert await core.deposits.pending_releases() == []
    assert (
        await core.deposits.check_payable(booking.id, amount_minor=50000, currency="RUB") == "gone"
    )
    # a payment that still arrives is recorded and owed back in full
    late = await _pay(core, booking.id)
    assert late.outcome == "late" and late.booking.refund_due == Decimal("500.00")
    assert late.booking.status is BookingStatus.CANCELLED
    cancels = await tenant_pool.fetchval(
        "SELECT count(*) FROM booking_history WHERE booking_id = $1 AND to_status = 'cancelled'",
        booking.id,
    )
    assert cancels == 1
    # the freed seat can be booked again
    assert (await _book(core, deposits, 2)).awaits_payment


async def test_an_approved_payment_keeps_its_seat_past_the_hold(
    core: BookingCore, deposits: Shop, clock: FakeClock
) -> None:
    booking = await _book(core, deposits, 1)
    clock.advance(timedelta(minutes=14))
    assert await core.deposits.check_payable(booking.id, amount_minor=50000, currency="RUB") == "ok"
    clock.advance(timedelta(minutes=2))  # past the hold, within the charge's grace
    assert await core.deposits.expire_holds() == []
    assert (await _pay(core, booking.id)).outcome == "confirmed"


async def test_cancellation_policy(core: BookingCore, deposits: Shop, clock: FakeClock) -> None:
    await core.deposits.update_settings(free_cancel_hours=12, late_keep_percent=50)
    early = await _book(core, deposits, 1, hour=10)  # Monday 10:00, 22 h ahead
    await _pay(core, early.id, "a")
    terms = await core.deposits.terms((await core.bookings.get(early.id)).booking)
    assert terms.free and terms.refund == 500 and terms.kept == 0
    cancelled = await core.bookings.cancel(early.id, actor=Actor.customer(1))
    assert cancelled.refund_due == Decimal("500.00")

    late = await _book(core, deposits, 2, hour=12)
    await _pay(core, late.id, "b")
    clock.advance(timedelta(hours=16))  # 8 h before Monday 12:00: later than 12 h
    terms = await core.deposits.terms((await core.bookings.get(late.id)).booking)
    assert not terms.free and terms.kept == 250 and terms.refund == 250
    cancelled = await core.bookings.cancel(late.id, actor=Actor.customer(2))
    assert cancelled.refund_due == Decimal("250.00")
    refunded = await core.deposits.mark_refunded(late.id)
    assert refunded.refunded_at == clock()

    by_owner = await _book(core, deposits, 3, hour=14)
    await _pay(core, by_owner.id, "c")
    cancelled = await core.bookings.cancel(by_owner.id, actor=Actor.owner(99))
    assert cancelled.refund_due == Decimal("500.00")  # the owner cancelled: all of it back

    no_show = await _book(core, deposits, 4, hour=16)
    await _pay(core, no_show.id, "d")
    unpaid = await _book(core, deposits, 5, hour=17, deposit_rule=DepositRule.full())
    clock.advance(timedelta(days=1))
    marked = await core.bookings.mark_no_show(no_show.id, actor=Actor.owner(99))
    assert marked.status is BookingStatus.NO_SHOW and marked.refund_due is None  # kept

    cancelled = await core.bookings.cancel(unpaid.id, actor=Actor.owner(99))
    assert cancelled.payment is PaymentState.RELEASED and cancelled.refund_due is None


async def test_many_concurrent_attempts(
    core: BookingCore, deposits: Shop, tenant_pool: asyncpg.Pool
) -> None:
    """200 customers tap one held slot: one hold. 50 pre-checkouts and 50 repeats of its payment at
    once: it is paid once. 30 customers book 30 slots and pay at once: 30 confirmed."""
    people = [await core.customers.register(10_000 + i) for i in range(200)]
    results = await asyncio.gather(
        *(
            core.bookings.book(
                customer_id=p.id,
                service_id=deposits.service.id,
                staff_id=deposits.ivan.id,
                start=moscow(MONDAY, 10),
                actor=Actor.customer(p.telegram_user_id),
            )
            for p in people
        ),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1 and won[0].awaits_payment
    assert Counter(getattr(r, "code", "") for r in results if isinstance(r, BaseException)) == {
        "slot_taken": 199
    }
    booking = won[0]
    checks = await asyncio.gather(
        *(
            core.deposits.check_payable(booking.id, amount_minor=50000, currency="RUB")
            for _ in range(50)
        )
    )
    assert set(checks) == {"ok"}
    payments = await asyncio.gather(*(_pay(core, booking.id, "same") for _ in range(50)))
    assert Counter(p.outcome for p in payments) == {"confirmed": 1, "repeat": 49}

    slots = [
        (staff, hour, minute)
        for staff in (deposits.ivan, deposits.olga)
        for hour in range(11, 18)
        for minute in (0, 30)
    ][:26]
    booked = await asyncio.gather(
        *(
            core.bookings.book(
                customer_id=people[i].id,
                service_id=deposits.service.id,
                staff_id=staff.id,
                start=moscow(MONDAY, hour, minute),
                actor=Actor.customer(people[i].telegram_user_id),
            )
            for i, (staff, hour, minute) in enumerate(slots[::2], start=1)
        )
    )
    paid = await asyncio.gather(*(_pay(core, b.id, f"c{b.id}") for b in booked))
    assert Counter(p.outcome for p in paid) == {"confirmed": len(booked)}
    assert await tenant_pool.fetchval("SELECT count(*) FROM bookings WHERE payment = 'paid'") == (
        len(booked) + 1
    )


async def test_a_repeat_no_show_is_asked_a_deposit(
    core: BookingCore, shop: Shop, clock: FakeClock
) -> None:
    """The owner's rule "deposit from 2 no-shows": such a customer pays the full price of a
    service without a deposit (the service's own deposit where it has one); others book as ever."""
    await core.deposits.update_settings(provider_token="v1:test:sealed")
    await core.catalogue.update_settings(no_show_action="deposit", no_show_threshold=2)
    for hour in (10, 11):
        missed = await _book(core, shop, 1, hour=hour)
        assert missed.payment is PaymentState.NONE  # not yet a repeat no-show
    clock.advance(timedelta(days=1, hours=4))
    for booking_id in (1, 2):
        await core.bookings.mark_no_show(booking_id, actor=Actor.owner(99))
    later = moscow(MONDAY + timedelta(days=1), 15)
    customer = await core.customers.register(1)
    asked = await core.bookings.book(
        customer_id=customer.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=later,
        actor=Actor.customer(1),
    )
    assert asked.awaits_payment and asked.deposit == Decimal("1500.00")
    other = await core.customers.register(2)
    fine = await core.bookings.book(
        customer_id=other.id,
        service_id=shop.service.id,
        staff_id=shop.olga.id,
        start=later,
        actor=Actor.customer(2),
    )
    assert fine.payment is PaymentState.NONE
    await core.deposits.set_rule(shop.service.id, DepositRule(DepositKind.FIXED, Decimal(500)))
    own = await core.bookings.book(
        customer_id=customer.id,
        service_id=shop.service.id,
        staff_id=shop.ivan.id,
        start=later + timedelta(hours=1),
        actor=Actor.customer(1),
    )
    assert own.deposit == Decimal("500.00")
