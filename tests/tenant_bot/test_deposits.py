"""Deposits end to end (issue 19): a real bot, the emulator playing Telegram Payments, customers
paying as people do (late, twice, at once), the owner setting it up and seeing who paid."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from decimal import Decimal

from tenant_bot.booking import BookingStatus, DepositKind, DepositRule
from tenant_bot.booking.models import PaymentState
from tenant_bot.callbacks import Admin, PaySetting
from tenant_bot.payments import TokenVault
from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text
from tests.support.dw_helpers import wait_until

PROVIDER_TOKEN = "381764678:TEST:s3cret42"
TUESDAY = date(2030, 1, 8)


async def take_deposits(bot, tenant, *, receipts: bool = False, **policy: int) -> None:
    """What the owner does in /admin (tested below): a provider, 500 for the haircut."""
    vault = TokenVault(bot.runtime.bot_token.get_secret_value())
    await tenant.core.deposits.update_settings(
        provider_token=vault.seal(PROVIDER_TOKEN), receipts=receipts, **policy
    )
    await tenant.core.deposits.set_rule(
        tenant.service_id, DepositRule(DepositKind.FIXED, Decimal(500))
    )


async def invoice_of(user) -> dict:
    return await user.wait_for_bot_message(lambda m: m["invoice"] is not None, timeout=10)


async def test_owner_connects_a_provider_and_sets_a_deposit(start_bot, tenant) -> None:
    bot = await start_bot()
    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "⚙️ Settings")
    screen = await tap(owner, "💳 Deposits and payments")
    assert "not connected" in screen["text"]
    await owner.click(data=PaySetting(name="token").pack())
    await owner.wait_answer()
    bad = await say(owner, "123:abc")
    assert "not a provider token" in bad["text"]
    await owner.send(PROVIDER_TOKEN)
    saved = await wait_for_text(owner, "Token saved")
    assert saved
    await asyncio.sleep(0.3)
    texts = [m["text"] or "" for m in await owner.messages()]
    assert not any(PROVIDER_TOKEN in t for t in texts), "the token does not stay in the chat"
    stored = await tenant.core.deposits.settings()
    assert stored.provider_token is not None and stored.provider_token.startswith("v1:")
    assert PROVIDER_TOKEN not in stored.provider_token
    assert TokenVault(bot.runtime.bot_token.get_secret_value()).open(stored.provider_token) == (
        PROVIDER_TOKEN
    )
    assert TokenVault("1:other-bot-token-xyz").open(stored.provider_token) is None
    await owner.click(data=PaySetting(name="svc").pack())
    await owner.wait_answer()
    await tap(owner, "Haircut — no deposit")
    assert "Type an amount" in (await say(owner, "abc"))["text"]
    saved_rule = await say(owner, "30%")
    assert (
        "deposit 30%" in saved_rule["text"]
        or "deposit 30%" in (await wait_for_text(owner, "Haircut: deposit 30%"))["text"]
    )
    service = await tenant.core.catalogue.get_service(tenant.service_id)
    assert service.deposit_rule == DepositRule(DepositKind.PERCENT, Decimal(30))
    await owner.click(data=Admin(section="payments").pack())
    screen = await owner.wait_answer()
    assert "connected" in screen["text"] and "not connected" not in screen["text"]


async def test_deposit_paid_confirms_the_booking(start_bot, tenant, emulator) -> None:
    bot = await start_bot()
    await take_deposits(bot, tenant, receipts=True, free_cancel_hours=24, late_keep_percent=100)
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(anna, "8")
    await tap(anna, "10:00")
    await say(anna, "Anna")
    summary = await say(anna, "+79161234567")
    assert "Deposit: <b>500" in summary["text"] or "Deposit: 500" in summary["text"]
    assert "Free cancellation until 24 h before" in summary["text"]  # the policy before paying
    await anna.click("✅ Confirm")
    invoice = await invoice_of(anna)
    assert invoice["invoice"]["total_amount"] == 50000 and invoice["invoice"]["currency"] == "RUB"
    held = [m for m in await anna.messages() if "held for you" in (m["text"] or "")]
    assert held, "the customer is told the time is held and until when"
    sent = next(
        m
        for m in emulator.world.conversations[(bot.bot_id, anna.id)].messages.values()
        if m.invoice
    )
    receipt = sent.invoice["provider_data"]["receipt"]["items"][0]
    assert receipt["amount"] == {"value": "500.00", "currency": "RUB"}
    assert receipt["payment_mode"] == "partial_prepayment"
    booking = (await tenant.core.bookings.for_day(TUESDAY))[0].booking
    assert booking.awaits_payment and booking.status is BookingStatus.PENDING

    result = await anna.pay()
    assert result["status"] == "paid"
    assert result["answered_in"] < 10
    confirmed = await wait_for_text(anna, "You are booked")
    assert "Paid 500" in confirmed["text"]
    note = await wait_for_text(bot.owner, "New booking")
    assert "Anna" in note["text"]
    booking = (await tenant.core.bookings.get(booking.id)).booking
    assert booking.status is BookingStatus.CONFIRMED and booking.payment is PaymentState.PAID

    # Telegram repeats the successful_payment update: nothing changes, nobody hears twice
    count = len(await anna.messages())
    owner_count = len(await bot.owner.messages())
    await bot.sandbox.deliver_again(bot_id=bot.bot_id, update_id=result["update_id"])
    await asyncio.sleep(0.5)
    assert len(await anna.messages()) == count
    assert len(await bot.owner.messages()) == owner_count
    assert (await tenant.core.bookings.get(booking.id)).booking.paid_amount == Decimal("500.00")

    # the owner sees it paid in the export (and on the card: below)
    rows = await tenant.core.reports.export_rows(TUESDAY, TUESDAY)
    header = rows[0]
    assert rows[1][header.index("payment")] == "paid"
    assert rows[1][header.index("paid")] == Decimal("500.00")


async def test_owner_card_shows_paid_and_unpaid(start_bot, tenant) -> None:
    bot = await start_bot()
    await take_deposits(bot, tenant)
    anna = await bot.customer("Anna")
    await book_first_slot(anna)
    await invoice_of(anna)

    async def card() -> str:
        await say(bot.owner, "/admin")
        await tap(bot.owner, "📋 Tomorrow")
        label = next(b for b in await buttons(bot.owner) if "10:00" in b)
        return (await tap(bot.owner, label))["text"]

    shown = await card()
    assert "Deposit 500" in shown and "unpaid" in shown
    await anna.pay()
    await wait_for_text(anna, "You are booked")
    assert "paid 500" in await card()


async def test_two_customers_race_one_pays_the_other_is_refused_before_paying(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    await take_deposits(bot, tenant)
    anna, boris = await bot.customer("Anna"), await bot.customer("Boris")

    async def to_summary(user, name: str) -> None:
        await say(user, "/book")
        await tap(user, "Haircut · 1 h · 1\u202f500 ₽")
        await tap(user, "8")
        await tap(user, "10:00")
        await say(user, name)
        await say(user, "+79161234567")

    await asyncio.gather(to_summary(anna, "Anna"), to_summary(boris, "Boris"))
    await asyncio.gather(anna.click("✅ Confirm"), boris.click("✅ Confirm"))
    await asyncio.sleep(1.0)
    chats = {name: await u.messages() for name, u in (("anna", anna), ("boris", boris))}
    with_invoice = [n for n, msgs in chats.items() if any(m["invoice"] for m in msgs)]
    assert len(with_invoice) == 1, "one seat, one hold, one invoice"
    winner, loser = (anna, boris) if with_invoice == ["anna"] else (boris, anna)
    await wait_for_text(loser, "that time was just taken")
    assert (await winner.pay())["status"] == "paid"
    await wait_for_text(winner, "You are booked")
    active = [d for d in await tenant.core.bookings.for_day(TUESDAY) if d.booking.status.active]
    assert len(active) == 1 and active[0].booking.payment is PaymentState.PAID


async def test_hold_expires_and_the_time_goes_to_the_waitlist(start_bot, tenant, clock) -> None:
    bot = await start_bot()
    await take_deposits(bot, tenant, hold_minutes=15)
    anna = await bot.customer("Anna")
    await book_first_slot(anna)
    await invoice_of(anna)
    boris_user = await bot.customer("Boris")
    await say(boris_user, "/start")
    boris = await tenant.core.customers.register(boris_user.id, name="Boris", locale="en")
    await tenant.core.waitlist.join(customer_id=boris.id, service_id=tenant.service_id, day=TUESDAY)

    clock.advance(timedelta(minutes=16))
    bot.resources.holds.nudge()
    await wait_for_text(anna, "not paid in time", timeout=10)
    await wait_for_text(boris_user, "A time has freed up", timeout=10)
    booking = (await tenant.core.bookings.for_day(TUESDAY))[0].booking
    assert booking.status is BookingStatus.CANCELLED and booking.payment is PaymentState.RELEASED

    # paying the old invoice now is refused before any money moves
    result = await anna.pay()
    assert result["status"] == "refused"
    assert "no longer held" in result["error_message"]

    # a restart tells nobody again
    told = len(await boris_user.messages())
    await bot.shutdown()
    bot = await start_bot()
    await asyncio.sleep(1.0)
    assert len(await boris_user.messages()) == told


async def test_release_interrupted_by_a_crash_is_finished_after_restart(
    start_bot, tenant, clock
) -> None:
    """A process expired the hold and died before telling the waitlist: the next one tells it,
    once."""
    bot = await start_bot()
    await take_deposits(bot, tenant, hold_minutes=15)
    anna = await bot.customer("Anna")
    await book_first_slot(anna)
    await invoice_of(anna)
    boris_user = await bot.customer("Boris")
    await say(boris_user, "/start")
    boris = await tenant.core.customers.register(boris_user.id, name="Boris", locale="en")
    await tenant.core.waitlist.join(customer_id=boris.id, service_id=tenant.service_id, day=TUESDAY)
    await bot.shutdown()
    clock.advance(timedelta(minutes=16))
    assert len(await tenant.core.deposits.expire_holds()) == 1  # ... and the process "dies" here
    bot = await start_bot()
    await wait_for_text(boris_user, "A time has freed up", timeout=10)
    # the release is marked done just after the offer is sent
    await wait_until(lambda: _no_pending_releases(tenant), timeout=10)
    await bot.shutdown()
    await start_bot()
    await asyncio.sleep(1.0)
    offers = [m for m in await boris_user.messages() if "freed up" in (m["text"] or "")]
    assert len(offers) == 1


async def test_pre_checkout_after_the_hold_ran_out_is_refused(start_bot, tenant, clock) -> None:
    bot = await start_bot(background=False)  # no loop: the pre-checkout check alone refuses
    await take_deposits(bot, tenant, hold_minutes=15)
    anna = await bot.customer("Anna")
    await book_first_slot(anna)
    await invoice_of(anna)
    clock.advance(timedelta(minutes=15, seconds=1))
    result = await anna.pay()
    assert result["status"] == "refused"
    assert "has run out" in result["error_message"]
    booking = (await tenant.core.bookings.for_day(TUESDAY))[0].booking
    assert booking.payment is PaymentState.AWAITING  # nothing charged, nothing recorded


async def test_late_cancellation_keeps_the_deposit_and_the_owner_is_told_the_refund(
    start_bot, tenant, clock
) -> None:
    bot = await start_bot()
    await take_deposits(bot, tenant, free_cancel_hours=24, late_keep_percent=50)
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await book_first_slot(anna)  # Tuesday 10:00, 25 h ahead
    await invoice_of(anna)
    await anna.pay()
    await wait_for_text(anna, "You are booked")
    clock.advance(timedelta(hours=5))  # 20 h before: later than free cancellation
    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    question = await tap(anna, "✖ Cancel booking")
    assert "250" in question["text"] and "kept" in question["text"]
    done = await tap(anna, "Yes, cancel it")
    assert "kept by the business: 250" in done["text"]
    notice = await wait_for_text(bot.owner, "Refund due: 250")
    assert "Anna" in notice["text"]
    assert "Payment id at the provider" in notice["text"]
    booking = (await tenant.core.bookings.for_day(TUESDAY))[0].booking
    assert booking.refund_due == Decimal("250.00")
    await bot.owner.click("✅ Refund made")
    await asyncio.sleep(0.5)
    assert (await tenant.core.bookings.get(booking.id)).booking.refunded_at is not None


async def test_many_customers_pay_at_once_each_within_telegrams_10_seconds(
    start_bot, tenant
) -> None:
    from tenant_bot.booking import WorkInterval

    bot = await start_bot()
    await take_deposits(bot, tenant)
    people = [await bot.customer(f"C{i}") for i in range(12)]
    for person in people:
        await say(person, "/start")
    # every customer holds a seat of their own (booked through the core, paid through Telegram)
    for weekday in range(7):
        await tenant.core.catalogue.set_working_hours(
            tenant.staff_id, weekday, [WorkInterval.parse("08:00-22:00")]
        )
    from datetime import UTC, datetime

    bookings = []
    for i, person in enumerate(people):
        customer = await tenant.core.customers.register(person.id, name=f"C{i}", locale="en")
        booking = await tenant.core.bookings.book(
            customer_id=customer.id,
            service_id=tenant.service_id,
            staff_id=tenant.staff_id,
            start=datetime(2030, 1, 8, 5 + i, 0, tzinfo=UTC),
        )
        details = await tenant.core.bookings.get(booking.id)
        assert await bot.resources.dispatcher["payments"].send_invoice(details, locale="en")
        bookings.append(booking)
    started = time.monotonic()
    results = await asyncio.gather(*(p.pay() for p in people))
    assert [r["status"] for r in results] == ["paid"] * len(people)
    slowest = max(r["answered_in"] for r in results)
    assert slowest < 10, slowest
    await asyncio.gather(*(wait_for_text(p, "You are booked", timeout=15) for p in people))
    assert time.monotonic() - started < 30
    for booking in bookings:
        assert (await tenant.core.bookings.get(booking.id)).booking.payment is PaymentState.PAID


async def test_a_repeat_no_show_is_asked_a_deposit_in_the_chat(start_bot, tenant, clock) -> None:
    """The owner's rule "a deposit from 2 no-shows" (issue 19, item 4): the customer who missed
    twice gets an invoice for a service that takes no deposit; another customer books as ever."""
    from datetime import UTC, datetime

    from tenant_bot.booking import Actor

    bot = await start_bot()
    vault = TokenVault(bot.runtime.bot_token.get_secret_value())
    await tenant.core.deposits.update_settings(provider_token=vault.seal(PROVIDER_TOKEN))
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")  # Tue 10:00
    customer = await tenant.core.customers.by_telegram_id(anna.id)
    assert customer is not None
    second = await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        start=datetime(2030, 1, 8, 9, 0, tzinfo=UTC),  # Tue 12:00
        actor=Actor.owner(),
    )
    [first] = [
        d.booking.id
        for d in await tenant.core.bookings.for_day(TUESDAY)
        if d.booking.id != second.id
    ]
    await tenant.core.bookings.confirm(first, actor=Actor.owner())
    clock.now = datetime(2030, 1, 8, 10, 0, tzinfo=UTC)  # Tue 13:00: both are over, both missed
    for booking_id in (first, second.id):
        await tenant.core.bookings.mark_no_show(booking_id, actor=Actor.owner())
    await bot.resources.core.catalogue.update_settings(
        no_show_action="deposit", no_show_threshold=2
    )

    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(anna, "8")
    summary = await tap(anna, "16:00")
    assert "Prepayment: 1\u202f500 ₽" in summary["text"], summary["text"]
    await anna.click("✅ Confirm")
    invoice = await invoice_of(anna)
    assert invoice["invoice"]["total_amount"] == 150000  # the full price: the service has none
    held = [d.booking for d in await tenant.core.bookings.for_customer(customer.id)]
    assert any(b.awaits_payment for b in held)

    boris = await bot.customer("Boris")
    booked = await book_first_slot(boris, name="Boris", time="15:00")
    assert "You are booked" in booked["text"]
    assert not [m for m in await boris.messages() if m["invoice"]]


async def _no_pending_releases(tenant) -> bool:
    return await tenant.core.deposits.pending_releases() == []
