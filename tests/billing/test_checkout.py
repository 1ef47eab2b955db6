"""Creating payments: our idempotence key first, retries with the same key, no double charge."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx
from tenacity import wait_none

from fleet.billing.errors import ProviderRejected, ProviderUnavailable
from fleet.billing.wiring import Billing
from fleet.billing.yookassa import YooKassaClient
from fleet.errors import ConflictError, ValidationError
from sandbox.yookassa import YooKassaSandbox, YooKassaStandIn

PAYMENT = {
    "id": "2b0a7a4b-000f-5000-9000-1c1a3c0bde8f",
    "status": "pending",
    "paid": False,
    "amount": {"value": "990.00", "currency": "RUB"},
    "metadata": {"tenant_id": "1", "payment_id": "x"},
    "confirmation": {"type": "redirect", "confirmation_url": "https://pay.example/c/1"},
}


async def test_timeouts_and_5xx_are_retried_with_the_same_key() -> None:
    with respx.mock(base_url="https://api.test/v3") as mock:
        route = mock.post("/payments").mock(
            side_effect=[
                httpx.ReadTimeout("slow"),
                httpx.Response(500, json={"type": "error", "code": "internal_server_error"}),
                httpx.Response(202, json={"type": "processing", "retry_after": 1800}),
                httpx.Response(200, json=PAYMENT),
            ]
        )
        async with YooKassaClient(
            shop_id="1", secret_key="k", api_url="https://api.test/v3", retry_wait=wait_none()
        ) as client:
            payment = await client.create_payment(
                idempotence_key="5d0b1c52-8f0e-4a43-9d39-6d5e2f0a1b2c",
                amount=Decimal("990"),
                currency="RUB",
                description="d",
                metadata={"tenant_id": "1"},
                return_url="https://t.me/x",
            )
    assert payment.amount == Decimal("990.00") and payment.status == "pending"
    keys = {call.request.headers["Idempotence-Key"] for call in route.calls}
    assert route.call_count == 4 and keys == {"5d0b1c52-8f0e-4a43-9d39-6d5e2f0a1b2c"}
    assert b'"value":"990.00"' in route.calls[0].request.content.replace(b" ", b"")


async def test_4xx_is_not_retried_and_gives_up_after_max_attempts() -> None:
    with respx.mock(base_url="https://api.test/v3") as mock:
        bad = mock.post("/payments").mock(
            return_value=httpx.Response(
                400, json={"code": "invalid_request", "description": "bad", "parameter": "amount"}
            )
        )
        down = mock.get("/payments/abc").mock(side_effect=httpx.ConnectError("refused"))
        async with YooKassaClient(
            shop_id="1",
            secret_key="k",
            api_url="https://api.test/v3",
            max_attempts=3,
            retry_wait=wait_none(),
        ) as client:
            with pytest.raises(ProviderRejected) as rejected:
                await client.create_payment(
                    idempotence_key="k1",
                    amount=Decimal("1"),
                    currency="RUB",
                    description="d",
                    metadata={},
                    return_url="https://t.me/x",
                )
            with pytest.raises(ProviderUnavailable):
                await client.get_payment("abc")
    assert bad.call_count == 1 and rejected.value.parameter == "amount"
    assert down.call_count == 3


async def test_standin_failing_twice_gives_one_payment(
    billing: Billing,
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,
    pool,
    make_order,
) -> None:
    await yookassa_sandbox.inject_fault("create", status=500, count=2)
    checkout = await billing.checkout.purchase(make_order())
    rows = await pool.fetch(
        "SELECT * FROM control.payments WHERE tenant_id = $1", checkout.tenant_id
    )
    assert len(rows) == 1 and rows[0]["status"] == "pending"
    at_standin = [
        p for p in yookassa_standin.ledger.payments.values()
        if p.request.metadata and p.request.metadata.get("payment_id") == str(rows[0]["id"])
    ]  # fmt: skip
    assert len(at_standin) == 1 and at_standin[0].id == rows[0]["provider_payment_id"]


async def test_checkout_after_a_failed_call_reuses_the_key(
    billing: Billing,
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,
    pool,
    make_order,
) -> None:
    order = make_order()
    # Every attempt fails (5xx): the buyer sees an error and the row keeps its key...
    await yookassa_sandbox.inject_fault("create", status=500, count=10)
    with pytest.raises(ProviderUnavailable):
        await billing.checkout.purchase(order)
    row = await pool.fetchrow(
        "SELECT p.* FROM control.payments p JOIN control.tenants t ON t.id = p.tenant_id"
        " WHERE t.bot_id = $1",
        order.bot_id,
    )
    assert row["status"] == "new" and row["provider_payment_id"] is None and row["last_error"]
    # ...and presses "pay" again: the same row and key, one payment at YooKassa.
    await yookassa_sandbox.request("DELETE", "/faults")
    checkout = await billing.checkout.purchase(order)
    assert checkout.payment_id == row["id"]
    again = await billing.checkout.purchase(order)
    assert again.confirmation_url == checkout.confirmation_url
    count = await pool.fetchval(
        "SELECT count(*) FROM control.payments WHERE tenant_id = $1", checkout.tenant_id
    )
    assert count == 1
    assert len(yookassa_standin.ledger.payments) == 1


async def test_token_in_use_by_another_owner_is_refused(billing: Billing, make_order) -> None:
    order = make_order(owner=111)
    await billing.checkout.purchase(order)
    other = make_order(owner=222, bot_token=order.bot_token, bot_id=order.bot_id)
    with pytest.raises(ConflictError) as refused:
        await billing.checkout.purchase(other)
    assert refused.value.field == "bot_token"


async def test_unknown_plan_and_bad_time_zone_are_refused(billing: Billing, make_order) -> None:
    with pytest.raises(ValidationError):
        await billing.checkout.purchase(make_order(plan_code="nosuchplan"))
    with pytest.raises(ValidationError) as bad:
        await billing.checkout.purchase(make_order(timezone="Mars/Olympus"))
    assert bad.value.field == "timezone"
