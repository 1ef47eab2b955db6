"""``POST/GET /api/v1/payments/{id}/refunds`` (issue 18): the admin API refunds through the YooKassa
stand-in over HTTP, with the Idempotency-Key as the refund's own key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import SecretStr

from fleet.billing.config import BillingConfig
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaSandbox, YooKassaStandIn
from tests.support.api_support import client_for
from tests.support.billing_fixtures import (  # noqa: F401  (fixtures are found by name)
    billing,
    clock,
    make_order,
    plan,
    provider,
    secret_box,
    yookassa_sandbox,
)
from tests.support.receipt_support import paid_purchase, receipts_config, strict_standin


@pytest_asyncio.fixture
async def yookassa_standin() -> AsyncIterator[YooKassaStandIn]:
    async for standin in strict_standin():
        yield standin


@pytest.fixture
def billing_config() -> BillingConfig:
    return receipts_config()


@pytest_asyncio.fixture
async def billing_app(app_factory, yookassa_standin: YooKassaStandIn) -> FastAPI:
    return await app_factory(
        yookassa_shop_id=DEFAULT_SHOP_ID,
        yookassa_secret_key=SecretStr(DEFAULT_SECRET_KEY),
        yookassa_api_url=yookassa_standin.api_url,
        yookassa_return_url="https://t.me/botfleet_sales_bot",
        yookassa_receipts=True,
        yookassa_vat_code=11,
        yookassa_tax_system_code=1,
    )


@pytest_asyncio.fixture
async def admin_api(billing_app: FastAPI, make_key) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(billing_app, await make_key("admin")) as client:
        yield client


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_refund_through_the_api(
    admin_api: httpx.AsyncClient,
    billing_app: FastAPI,
    make_key,
    billing,  # noqa: F811
    yookassa_standin: YooKassaStandIn,
    pool,
    make_order,  # noqa: F811
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    url = f"/api/v1/payments/{payment['id']}/refunds"

    missing = await admin_api.post(url, json={"amount": "100.00"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "Idempotency-Key"
    async with client_for(billing_app, await make_key("read")) as reader:
        assert (await reader.post(url, json={}, headers=key())).status_code == 403
        assert (await reader.get(url)).json() == []

    first_key = key()
    made = await admin_api.post(
        url, json={"amount": "100.00", "reason": "outage"}, headers=first_key
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "succeeded" and body["amount"] == "100.00" and body["effect"] == "none"
    assert body["key"] == f"api:{first_key['Idempotency-Key']}"
    again = await admin_api.post(
        url, json={"amount": "100.00", "reason": "outage"}, headers=first_key
    )
    assert again.json() == body and again.headers["idempotent-replayed"] == "true"

    over = await admin_api.post(url, json={"amount": "890.01"}, headers=key())
    assert over.status_code == 422 and "left to refund: 890.00 RUB" in over.json()["detail"]
    bad = await admin_api.post(url, json={"amount": "-1"}, headers=key())
    assert bad.status_code == 422
    unknown = await admin_api.post(
        f"/api/v1/payments/{uuid.uuid4()}/refunds", json={}, headers=key()
    )
    assert unknown.status_code == 404

    # The rest, raced by several keys at once: one refunds it, the others are told it is gone.
    raced = await asyncio.gather(*(admin_api.post(url, json={}, headers=key()) for _ in range(6)))
    assert sorted(r.status_code for r in raced) == [201, 409, 409, 409, 409, 409]
    winner = next(r.json() for r in raced if r.status_code == 201)
    assert winner["amount"] == "890.00" and winner["effect"] == "subscription_ended"
    listed = (await admin_api.get(url)).json()
    assert [r["id"] for r in listed] == [body["id"], winner["id"]]
    assert sum(Decimal(r.amount) for r in yookassa_standin.ledger.refunds.values()) == Decimal(
        "990.00"
    )


async def test_a_retry_after_yookassa_failed_finishes_the_same_refund(
    admin_api: httpx.AsyncClient,
    billing,  # noqa: F811
    yookassa_standin: YooKassaStandIn,
    yookassa_sandbox: YooKassaSandbox,  # noqa: F811
    pool,
    make_order,  # noqa: F811
) -> None:
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    url = f"/api/v1/payments/{payment['id']}/refunds"
    await yookassa_sandbox.inject_fault("refund", status=500, count=20)
    same = key()
    down = await admin_api.post(url, json={}, headers=same)
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    await yookassa_sandbox.request("DELETE", "/faults")
    retried = await admin_api.post(url, json={}, headers=same)
    assert (
        retried.status_code == 200 and retried.json()["status"] == "succeeded"
    )  # our key found it
    assert len(yookassa_standin.ledger.refunds) == 1
