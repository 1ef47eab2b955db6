"""Refunds end to end against the YooKassa stand-in over HTTP (issue 18), with receipts required as in
production: full and partial, what each does to the subscription, our idempotence key, over-refunds,
many concurrent refunds of one payment, and ``refund.succeeded`` through the webhook."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
import pytest_asyncio

from fleet.billing.config import BillingConfig
from fleet.billing.errors import ProviderRejected, ProviderUnavailable
from fleet.billing.receipts import Contact
from fleet.billing.refunds import parse_refund_amount
from fleet.billing.wiring import Billing
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import refunds as refund_repo
from sandbox.yookassa import YooKassaSandbox, YooKassaStandIn
from tests.support.billing_fixtures import YOOKASSA_IP
from tests.support.receipt_support import paid_purchase, pay, receipts_config, strict_standin


@pytest_asyncio.fixture
async def yookassa_standin() -> AsyncIterator[YooKassaStandIn]:
    async for standin in strict_standin():
        yield standin


@pytest.fixture
def billing_config() -> BillingConfig:
    return receipts_config()


async def _tenant(pool: asyncpg.Pool, tenant_id: int) -> dict[str, object]:
    row = await pool.fetchrow(
        "SELECT t.desired_state, s.status, s.current_period_start, s.current_period_end,"
        " s.suspended_at, s.auto_renew FROM control.tenants t"
        " JOIN control.subscriptions s ON s.tenant_id = t.id WHERE t.id = $1",
        tenant_id,
    )
    jobs = await pool.fetch(
        "SELECT kind FROM control.jobs WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    events = await pool.fetch(
        "SELECT kind, payload FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    return {**dict(row), "jobs": [j["kind"] for j in jobs], "events": [dict(e) for e in events]}


async def _audit(pool: asyncpg.Pool, target: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT action FROM control.audit_log WHERE target = $1 ORDER BY id", target
    )
    return [r["action"] for r in rows]


async def test_a_full_refund_ends_the_period_it_paid_for(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, clock
) -> None:
    checkout, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    clock.advance(days=2)
    made = await billing.refunds.refund(
        payment["id"], key="k1", actor="admin:test", reason="changed their mind"
    )
    assert made.status == "succeeded" and made.amount == Decimal("990.00")
    assert made.effect == "subscription_ended" and made.provider_refund_id
    remote = yookassa_standin.ledger.refunds[made.provider_refund_id]
    assert remote.amount == Decimal("990.00") and remote.description == "changed their mind"
    assert remote.receipt is not None  # a full refund: YooKassa reuses the payment's receipt

    state = await _tenant(pool, checkout.tenant_id)
    assert state["status"] == "expired" and state["desired_state"] == "stopped"
    assert state["suspended_at"] == clock.now and state["current_period_end"] == clock.now
    assert state["jobs"] == ["provision", "suspend"]
    refunded = state["events"][-1]
    assert refunded["kind"] == "payment.refunded"
    assert refunded["payload"]["effect"] == "subscription_ended"
    assert refunded["payload"]["amount"] == "990.00"
    assert refunded["payload"]["delete_at"] is not None
    assert await _audit(pool, str(payment["id"])) == ["refund.requested", "payment.refunded"]
    assert "tenant.suspend" in await _audit(pool, checkout.tenant_slug)

    # Nothing is left: a second refund is refused with the reason.
    with pytest.raises(ConflictError, match="already refunded in full"):
        await billing.refunds.refund(payment["id"], key="k2", actor="admin:test")
    # The lifecycle treats it as a suspension: the deletion warning and deletion follow.
    report = await billing.lifecycle.run_once(
        clock.now + timedelta(days=23, minutes=1), tenant_ids=[checkout.tenant_id]
    )
    assert report.warned == 1


async def test_a_partial_refund_carries_its_receipt_and_leaves_the_subscription(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    checkout, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_phone="+79001112233")
    )
    before = await _tenant(pool, checkout.tenant_id)
    made = await billing.refunds.refund(
        payment["id"], key="outage", actor="admin:test", amount=Decimal("300.50")
    )
    assert made.status == "succeeded" and made.effect == "none"
    remote = yookassa_standin.ledger.refunds[made.provider_refund_id]
    assert remote.receipt == {
        "customer": {"phone": "79001112233"},
        "items": [
            {
                "description": payment["description"],
                "quantity": "1.00",
                "amount": {"value": "300.50", "currency": "RUB"},
                "vat_code": 11,
                "payment_subject": "service",
                "payment_mode": "full_payment",
            }
        ],
        "tax_system_code": 1,
    }
    after = await _tenant(pool, checkout.tenant_id)
    assert after["status"] == "active" and after["desired_state"] == "running"
    assert after["current_period_end"] == before["current_period_end"]
    assert after["jobs"] == ["provision"]
    payload = after["events"][-1]["payload"]
    assert payload["effect"] == "none" and payload["refunded_total"] == "300.50"

    # The rest in full: the total equals the payment, so the period is taken back.
    rest = await billing.refunds.refund(payment["id"], key="rest", actor="admin:test")
    assert rest.amount == Decimal("689.50") and rest.effect == "subscription_ended"
    assert yookassa_standin.ledger.payments[payment["provider_payment_id"]].refunded_amount == (
        Decimal("990.00")
    )


async def test_a_full_refund_of_a_period_paid_ahead_takes_back_only_that_period(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, clock
) -> None:
    owner = 7771001
    checkout, _ = await paid_purchase(
        billing, yookassa_standin, pool, make_order(owner=owner, customer_email="a@example.com")
    )
    end = (await _tenant(pool, checkout.tenant_id))["current_period_end"]
    clock.advance(days=5)
    renewal = await billing.checkout.renew(tenant_id=checkout.tenant_id, owner_telegram_id=owner)
    row = await pool.fetchrow("SELECT * FROM control.payments WHERE id = $1", renewal.payment_id)
    await pay(billing, yookassa_standin, row["provider_payment_id"])
    assert (await _tenant(pool, checkout.tenant_id))["current_period_end"] == end + timedelta(
        days=30
    )
    made = await billing.refunds.refund(row["id"], key="oops", actor="admin:test")
    assert made.effect == "period_taken_back"
    state = await _tenant(pool, checkout.tenant_id)
    assert state["current_period_end"] == end and state["status"] == "active"
    assert state["desired_state"] == "running" and state["jobs"] == ["provision"]
    assert state["events"][-1]["payload"]["paid_until"] is not None


async def test_the_same_key_never_refunds_twice(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    first = await billing.refunds.refund(
        payment["id"], key="cli:x", actor="cli:ops", amount=Decimal("100")
    )
    again = await billing.refunds.refund(
        payment["id"], key="cli:x", actor="cli:ops", amount=Decimal("100")
    )
    assert again.replayed and again.id == first.id and not first.replayed
    with pytest.raises(ConflictError, match=r"already made a refund of 100\.00 RUB"):
        await billing.refunds.refund(
            payment["id"], key="cli:x", actor="cli:ops", amount=Decimal("200")
        )
    assert len(yookassa_standin.ledger.refunds) == 1


async def test_yookassa_down_then_the_same_key_finishes_the_refund(
    billing: Billing,
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,
    pool,
    make_order,
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    await yookassa_sandbox.inject_fault("refund", status=503, count=10)
    with pytest.raises(ProviderUnavailable):
        await billing.refunds.refund(payment["id"], key="k", actor="cli:ops")
    row = await pool.fetchrow("SELECT * FROM control.refunds WHERE payment_id = $1", payment["id"])
    assert row["status"] == "new" and "503" in row["last_error"]
    assert await refund_repo.count_unfinished(pool, older_than_s=0) >= 1  # the alert's gauge
    # While it is unfinished its amount stays reserved: no other key can refund it again.
    with pytest.raises(ConflictError, match="already refunded in full"):
        await billing.refunds.refund(payment["id"], key="other", actor="cli:ops")
    await yookassa_sandbox.request("DELETE", "/faults")
    done = await billing.refunds.refund(payment["id"], key="k", actor="cli:ops")
    assert done.replayed and done.status == "succeeded" and done.id == row["id"]
    assert len(yookassa_standin.ledger.refunds) == 1


async def test_bad_refunds_are_refused_with_what_to_fix(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    with pytest.raises(
        ValidationError, match=r"990\.01 RUB is more than is left to refund: 990\.00"
    ):
        await billing.refunds.refund(payment["id"], key="a", actor="t", amount=Decimal("990.01"))
    await billing.refunds.refund(payment["id"], key="b", actor="t", amount=Decimal("900"))
    with pytest.raises(ValidationError, match=r"left to refund: 90\.00 RUB .*refunded or being"):
        await billing.refunds.refund(payment["id"], key="c", actor="t", amount=Decimal("100"))
    with pytest.raises(NotFoundError):
        await billing.refunds.refund(uuid.uuid4(), key="d", actor="t")
    unpaid = await billing.checkout.purchase(make_order(customer_email="ivan@example.com"))
    with pytest.raises(ConflictError, match="only a succeeded one is refundable"):
        await billing.refunds.refund(unpaid.payment_id, key="e", actor="t")
    for typed, message in (("0", "positive"), ("1.001", "2 decimals"), ("abc", "not a number")):
        with pytest.raises(ValidationError, match=message):
            parse_refund_amount(typed)
    assert parse_refund_amount("150,5") == Decimal("150.5")


async def test_a_refund_yookassa_refuses_frees_its_amount(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    # Someone refunded part of it in YooKassa's dashboard meanwhile: YooKassa refuses ours.
    yookassa_standin.ledger.payments[payment["provider_payment_id"]].refunded_amount = Decimal(
        "500"
    )
    with pytest.raises(ProviderRejected) as refused:
        await billing.refunds.refund(payment["id"], key="a", actor="t")
    assert refused.value.parameter == "amount.value"
    row = await pool.fetchrow("SELECT * FROM control.refunds WHERE payment_id = $1", payment["id"])
    assert row["status"] == "canceled" and "amount.value" in row["last_error"]
    made = await billing.refunds.refund(payment["id"], key="b", actor="t", amount=Decimal("490"))
    assert made.status == "succeeded"
    assert "refund.rejected" in await _audit(pool, str(payment["id"]))


async def test_many_concurrent_refunds_never_exceed_the_payment(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    attempts = 30

    async def one(i: int) -> object:
        try:
            return await billing.refunds.refund(
                payment["id"], key=f"k{i}", actor="t", amount=Decimal("100")
            )
        except ValidationError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(attempts)))
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(made) == 9 and len(refused) == attempts - 9  # 9 x 100 <= 990 < 10 x 100
    total = await pool.fetchval(
        "SELECT sum(amount) FROM control.refunds WHERE payment_id = $1 AND status = 'succeeded'",
        payment["id"],
    )
    assert total == Decimal("900.00")
    remote = yookassa_standin.ledger.payments[payment["provider_payment_id"]]
    assert remote.refunded_amount == Decimal("900.00") and len(yookassa_standin.ledger.refunds) == 9
    # And the full rest, raced by many: exactly one gets it.
    rest = await asyncio.gather(
        *(billing.refunds.refund(payment["id"], key=f"r{i}", actor="t") for i in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in rest) == 1
    assert all(isinstance(r, ConflictError) for r in rest if isinstance(r, Exception))
    assert remote.refunded_amount == Decimal("990.00")


async def test_refund_succeeded_is_trusted_like_payments(
    billing: Billing,
    webhook,
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,
    pool,
    make_order,
) -> None:
    checkout, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    await yookassa_sandbox.settle_refunds_later()
    made = await billing.refunds.refund(payment["id"], key="k", actor="t", amount=Decimal("90"))
    assert made.status == "pending" and made.effect is None
    events = await _tenant(pool, checkout.tenant_id)
    assert [e["kind"] for e in events["events"]] == ["payment.succeeded"]

    # A forged notification from outside YooKassa's network is refused before anything is read.
    forged = {
        "type": "notification",
        "event": "refund.succeeded",
        "object": {"id": made.provider_refund_id},
    }
    async with httpx.AsyncClient() as http:
        answer = await http.post(webhook.url, json=forged)
    assert answer.status_code == 403
    # From YooKassa's network but the refund is still pending at the API: nothing is applied.
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=YOOKASSA_IP)
    ) as http:
        answer = await http.post(
            webhook.url,
            json={**forged, "object": {"id": made.provider_refund_id, "status": "succeeded"}},
        )
        assert answer.status_code == 200 and answer.json()["outcome"] == "ignored"
        unknown = {**forged, "object": {"id": str(uuid.uuid4())}}
        assert (await http.post(webhook.url, json=unknown)).json()["outcome"] == "ignored"

    await yookassa_sandbox.settle_refund(made.provider_refund_id)
    await yookassa_standin.wait_notifications()
    row = await pool.fetchrow("SELECT * FROM control.refunds WHERE id = $1", made.id)
    assert row["status"] == "succeeded" and row["applied_at"] is not None
    assert row["effect"] == "none"
    state = await _tenant(pool, checkout.tenant_id)
    assert [e["kind"] for e in state["events"]] == ["payment.succeeded", "payment.refunded"]

    # YooKassa's replay changes nothing.
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=YOOKASSA_IP)
    ) as http:
        replay = await http.post(webhook.url, json=forged)
    assert replay.json()["outcome"] == "duplicate"
    assert len((await _tenant(pool, checkout.tenant_id))["events"]) == 2
    deliveries = await yookassa_sandbox.notifications()
    assert [d["event"] for d in deliveries][-1] == "refund.succeeded"
    assert deliveries[-1]["delivered"]


async def test_a_crash_after_yookassa_refunded_is_healed_by_the_notification(
    billing: Billing,
    webhook,
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,
    pool,
    make_order,
) -> None:
    """The command crashed after YooKassa made the refund and before its answer was stored: the
    notification finds our unanswered row (the only one of that amount) and applies it; running the
    command again resends the same key and changes nothing more."""
    checkout, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )

    async def crashed_refund(key: str) -> asyncpg.Record:
        row = await refund_repo.insert_refund(
            pool,
            payment_id=payment["id"],
            amount=Decimal("990.00"),
            currency="RUB",
            request_key=key,
            reason="",
            requested_by="cli:ops",
            receipt=None,
        )
        await billing.provider.create_refund(
            idempotence_key=row["idempotence_key"],
            payment_id=payment["provider_payment_id"],
            amount=row["amount"],
            currency="RUB",
        )
        return row

    row = await crashed_refund("k")
    await yookassa_standin.wait_notifications()
    healed = await pool.fetchrow("SELECT * FROM control.refunds WHERE id = $1", row["id"])
    assert healed["status"] == "succeeded" and healed["provider_refund_id"] is not None
    assert healed["effect"] == "subscription_ended"
    again = await billing.refunds.refund(payment["id"], key="k", actor="cli:ops")
    assert again.replayed and again.id == row["id"] and again.status == "succeeded"
    assert len(yookassa_standin.ledger.refunds) == 1
    events = (await _tenant(pool, checkout.tenant_id))["events"]
    assert [e["kind"] for e in events].count("payment.refunded") == 1


async def test_two_unanswered_refunds_of_one_amount_are_never_guessed(
    billing: Billing,
    webhook,
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,
    pool,
    make_order,
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    rows = [
        await refund_repo.insert_refund(
            pool,
            payment_id=payment["id"],
            amount=Decimal("100.00"),
            currency="RUB",
            request_key=key,
            reason="",
            requested_by="t",
            receipt=billing.checkout.receipts.build(
                description="x",
                amount=Decimal("100.00"),
                currency="RUB",
                contact=Contact(email="ivan@example.com"),
            ).to_api(),
        )
        for key in ("a", "b")
    ]
    await billing.provider.create_refund(
        idempotence_key=rows[1]["idempotence_key"],
        payment_id=payment["provider_payment_id"],
        amount=Decimal("100.00"),
        currency="RUB",
        receipt=rows[1]["receipt"],
    )
    await yookassa_standin.wait_notifications()
    [delivery] = [
        d for d in await yookassa_sandbox.notifications() if d["event"] == "refund.succeeded"
    ]
    assert delivery["last_status"] == 503 and not delivery["delivered"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM control.refunds WHERE payment_id = $1 AND applied_at IS NOT NULL",
            payment["id"],
        )
        == 0
    )
    # The operator reruns the command of "b": its key is resent, YooKassa answers with the refund.
    done = await billing.refunds.refund(payment["id"], key="b", actor="t")
    assert done.id == rows[1]["id"] and done.status == "succeeded"
    assert len(yookassa_standin.ledger.refunds) == 1


async def test_a_plan_upgrade_carries_the_current_contact_and_its_refund_keeps_the_period(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, clock
) -> None:
    """The upgrade surcharge (issue 18, item 3) is a payment like any other: its receipt goes to the
    contact the owner set in "My bots"; refunding it changes neither plan nor period."""
    from fleet.repositories.plans import PlanRepository
    from tests.support.billing_fixtures import _cleanup_plan

    owner = 7772001
    checkout, _ = await paid_purchase(
        billing, yookassa_standin, pool, make_order(owner=owner, customer_email="old@example.com")
    )
    pro = await PlanRepository(pool).insert(
        code="p" + uuid.uuid4().hex[:10], name="Pro", price=Decimal("1990.00"), period_days=30
    )
    try:
        await billing.contacts.change(
            owner_telegram_id=owner, tenant_id=checkout.tenant_id, text="new@example.com"
        )
        clock.advance(minutes=5)
        change = await billing.plan_changes.change(
            tenant_id=checkout.tenant_id, plan_code=pro["code"], owner_telegram_id=owner, actor="t"
        )
        assert change.checkout is not None
        upgrade = await pool.fetchrow(
            "SELECT * FROM control.payments WHERE id = $1", change.checkout.payment_id
        )
        remote = yookassa_standin.ledger.payments[upgrade["provider_payment_id"]]
        assert remote.request.receipt is not None
        assert remote.request.receipt["customer"] == {"email": "new@example.com"}
        await pay(billing, yookassa_standin, upgrade["provider_payment_id"])
        before = await _tenant(pool, checkout.tenant_id)
        made = await billing.refunds.refund(upgrade["id"], key="k", actor="t")
        assert made.status == "succeeded" and made.effect == "none"
        after = await _tenant(pool, checkout.tenant_id)
        assert after["current_period_end"] == before["current_period_end"]
        assert after["status"] == "active" and after["desired_state"] == "running"
    finally:
        await pool.execute("DELETE FROM control.tenants WHERE id = $1", checkout.tenant_id)
        await _cleanup_plan(pool, pro["code"])
