"""The stand-in as a shop on YooKassa's 54-FZ solution (issue 18), over HTTP: receipts checked as
YooKassa checks them, shown on the checkout page and in the ledger; ``/v3/refunds`` with its
notification."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from sandbox.testing import fast_notifier_config
from sandbox.yookassa import YooKassaSandbox, YooKassaStandIn


def receipt(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer": {"email": "ivan@example.com"},
        "items": [
            {
                "description": "botfleet: Basic, 30 d, @shop_bot",
                "quantity": "1.00",
                "amount": {"value": "990.00", "currency": "RUB"},
                "vat_code": 11,
                "payment_subject": "service",
                "payment_mode": "full_payment",
            }
        ],
        "tax_system_code": 1,
    }
    data.update(overrides)
    return data


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "amount": {"value": "990.00", "currency": "RUB"},
        "confirmation": {"type": "redirect", "return_url": "https://t.me/sales_bot"},
        "capture": True,
        "description": "Basic",
        "receipt": receipt(),
    }
    data.update(overrides)
    return data


@pytest_asyncio.fixture
async def shop() -> AsyncIterator[YooKassaStandIn]:
    async with YooKassaStandIn.start(
        port=0, notifier=fast_notifier_config(), require_receipts=True
    ) as standin:
        yield standin


@pytest_asyncio.fixture
async def api(shop: YooKassaStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=shop.api_url + "/", auth=(shop.shop_id, shop.secret_key)
    ) as client:
        yield client


async def post(api: httpx.AsyncClient, path: str, data: dict[str, Any]) -> httpx.Response:
    return await api.post(path, json=data, headers={"Idempotence-Key": str(uuid.uuid4())})


def item_with(**changes: Any) -> dict[str, Any]:
    items = copy.deepcopy(receipt()["items"])
    items[0].update(changes)
    return receipt(items=items)


@pytest.mark.parametrize(
    ("sent", "parameter"),
    [
        (None, "receipt"),
        (receipt(customer={}), "receipt.customer"),
        (receipt(customer={"email": "not-an-email"}), "receipt.customer.email"),
        (receipt(customer={"phone": "+7 900 123"}), "receipt.customer.phone"),
        (receipt(items=[]), "receipt.items"),
        (item_with(description="x" * 129), "receipt.items[0].description"),
        (item_with(description=""), "receipt.items[0].description"),
        (item_with(quantity="0"), "receipt.items[0].quantity"),
        (item_with(amount={"value": "500.00", "currency": "RUB"}), "receipt.items"),
        (
            item_with(amount={"value": "990.00", "currency": "USD"}),
            "receipt.items[0].amount.currency",
        ),
        (item_with(vat_code=13), "receipt.items[0].vat_code"),
        (item_with(vat_code=0), "receipt.items[0].vat_code"),
        (item_with(payment_subject="subscription"), "receipt.items[0].payment_subject"),
        (item_with(payment_mode=None), "receipt.items[0].payment_mode"),
        (receipt(tax_system_code=7), "receipt.tax_system_code"),
    ],
)
async def test_a_payment_without_a_valid_receipt_is_refused_naming_the_parameter(
    api: httpx.AsyncClient, shop: YooKassaStandIn, sent: Any, parameter: str
) -> None:
    data = body(receipt=sent)
    if sent is None:
        del data["receipt"]
    answer = await post(api, "payments", data)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["code"] == "invalid_request"
    assert error["parameter"] == parameter and error["description"]
    assert shop.ledger.payments == {}  # nothing was created


@pytest.mark.parametrize("vat_code", [1, 5, 11, 12, "12"])
async def test_vat_codes_up_to_12_are_accepted(api: httpx.AsyncClient, vat_code: object) -> None:
    answer = await post(api, "payments", body(receipt=item_with(vat_code=vat_code)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["receipt_registration"] == "pending"


async def test_items_sum_quantity_times_unit_price(api: httpx.AsyncClient) -> None:
    two = item_with(quantity="2", amount={"value": "495.00", "currency": "RUB"})
    assert (await post(api, "payments", body(receipt=two))).status_code == 200
    three = item_with(quantity="3", amount={"value": "330.00", "currency": "RUB"})
    assert (await post(api, "payments", body(receipt=three))).status_code == 200


async def test_a_shop_with_several_tax_systems_needs_the_code(api, shop) -> None:
    sandbox = YooKassaSandbox(shop.base_url)
    async with sandbox:
        await sandbox.set_receipt_rules(tax_system_required=True)
        without = receipt()
        del without["tax_system_code"]
        refused = await post(api, "payments", body(receipt=without))
        assert refused.json()["parameter"] == "receipt.tax_system_code"
        assert (await post(api, "payments", body())).status_code == 200
        await sandbox.set_receipt_rules(required=False)
        no_receipt = body()
        del no_receipt["receipt"]
        assert (await post(api, "payments", no_receipt)).status_code == 200


async def test_a_phone_receipt_is_shown_on_the_checkout_page_and_in_the_ledger(
    api: httpx.AsyncClient, shop: YooKassaStandIn
) -> None:
    sent = receipt(customer={"phone": "79001234567"})
    created = (await post(api, "payments", body(receipt=sent))).json()
    async with httpx.AsyncClient() as http:
        page = await http.get(created["confirmation"]["confirmation_url"])
    assert "Receipt (54-FZ) to 79001234567" in page.text
    assert "botfleet: Basic, 30 d, @shop_bot" in page.text and "VAT code 11" in page.text
    async with YooKassaSandbox(shop.base_url) as sandbox:
        paid = await sandbox.succeed(created["id"])
        assert paid["receipt"]["customer"] == {"phone": "79001234567"}
        assert paid["receipt_registration"] == "succeeded"
        ledger = await sandbox.receipts()
    assert ledger["rules"] == {"required": True, "tax_system_required": False}
    [entry] = ledger["receipts"]
    assert entry["type"] == "payment" and entry["payment_id"] == created["id"]
    assert entry["receipt"]["items"][0]["vat_code"] == 11


async def test_refunds_full_partial_and_over(api: httpx.AsyncClient, shop: YooKassaStandIn) -> None:
    created = (await post(api, "payments", body())).json()
    refused = await post(
        api,
        "refunds",
        {"payment_id": created["id"], "amount": {"value": "10.00", "currency": "RUB"}},
    )
    assert refused.status_code == 400 and refused.json()["parameter"] == "payment_id"  # pending
    shop.succeed(created["id"])

    partial = {"payment_id": created["id"], "amount": {"value": "300.00", "currency": "RUB"}}
    no_receipt = await post(api, "refunds", partial)
    assert no_receipt.status_code == 400 and no_receipt.json()["parameter"] == "receipt"
    wrong_total = await post(api, "refunds", {**partial, "receipt": receipt()})
    assert wrong_total.json()["parameter"] == "receipt.items"
    refund_receipt = item_with(amount={"value": "300.00", "currency": "RUB"})
    key = str(uuid.uuid4())
    first = await api.post(
        "refunds", json={**partial, "receipt": refund_receipt}, headers={"Idempotence-Key": key}
    )
    again = await api.post(
        "refunds", json={**partial, "receipt": refund_receipt}, headers={"Idempotence-Key": key}
    )
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["status"] == "succeeded"
    assert first.json()["receipt_registration"] == "succeeded"

    over = await post(
        api,
        "refunds",
        {"payment_id": created["id"], "amount": {"value": "690.01", "currency": "RUB"}},
    )
    assert over.status_code == 400 and over.json()["parameter"] == "amount.value"
    assert "690.00" in over.json()["description"]
    # The rest, in full: no receipt needed (YooKassa reuses the payment's).
    rest = await post(
        api,
        "refunds",
        {"payment_id": created["id"], "amount": {"value": "690.00", "currency": "RUB"}},
    )
    assert rest.status_code == 400  # 690 of 990 is still a partial refund: it needs its receipt
    rest = await post(
        api,
        "refunds",
        {
            "payment_id": created["id"],
            "amount": {"value": "690.00", "currency": "RUB"},
            "receipt": item_with(amount={"value": "690.00", "currency": "RUB"}),
        },
    )
    assert rest.status_code == 200
    payment = (await api.get(f"payments/{created['id']}")).json()
    assert payment["refunded_amount"]["value"] == "990.00" and payment["refundable"] is False
    fetched = (await api.get(f"refunds/{first.json()['id']}")).json()
    assert fetched == first.json()
    listed = (await api.get("refunds", params={"payment_id": created["id"]})).json()["items"]
    assert {r["id"] for r in listed} == {first.json()["id"], rest.json()["id"]}
    assert (await api.get(f"refunds/{uuid.uuid4()}")).status_code == 404


async def test_a_full_refund_needs_no_receipt_and_is_notified(shop: YooKassaStandIn, api) -> None:
    created = (await post(api, "payments", body())).json()
    shop.succeed(created["id"])
    async with YooKassaSandbox(shop.base_url) as sandbox:
        await sandbox.settle_refunds_later()
        full = await post(
            api,
            "refunds",
            {"payment_id": created["id"], "amount": {"value": "990.00", "currency": "RUB"}},
        )
        assert full.status_code == 200 and full.json()["status"] == "pending"
        settled = await sandbox.settle_refund(full.json()["id"])
        assert settled["status"] == "succeeded"
        with pytest.raises(Exception, match="already succeeded"):
            await sandbox.settle_refund(full.json()["id"])
        [refund] = await sandbox.refunds()
        assert refund["receipt"]["customer"] == {"email": "ivan@example.com"}  # the payment's
        log = await sandbox.notifications()
    assert [d["event"] for d in log] == ["payment.succeeded", "refund.succeeded"]
    assert log[-1]["body"]["object"]["id"] == full.json()["id"]
    assert log[-1]["body"]["object"]["payment_id"] == created["id"]
