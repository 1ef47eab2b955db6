"""Every payment we create carries a 54-FZ receipt YooKassa accepts (issue 18), proven against the
stand-in acting as a shop that must send receipts: the first purchase, the owner's renewal, the
automatic charge of a saved card (the stored contact reused), a phone instead of an e-mail, the contact
changed by the owner; and a payment without a receipt is refused, so the check is real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from fleet.billing.config import BillingConfig
from fleet.billing.errors import ProviderRejected
from fleet.billing.receipts import parse_contact
from fleet.billing.wiring import Billing
from fleet.errors import ValidationError
from sandbox.yookassa import YooKassaStandIn
from tests.support.receipt_support import pay, receipts_config, strict_standin


@pytest_asyncio.fixture
async def yookassa_standin() -> AsyncIterator[YooKassaStandIn]:
    async for standin in strict_standin():
        yield standin


@pytest.fixture
def billing_config() -> BillingConfig:
    return receipts_config()


def receipt_of(standin: YooKassaStandIn, provider_id: str) -> dict[str, Any]:
    receipt = standin.ledger.payments[provider_id].request.receipt
    assert receipt is not None
    return receipt


async def payments_of(pool: asyncpg.Pool, tenant_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM control.payments WHERE tenant_id = $1 ORDER BY created_at", tenant_id
    )


async def test_purchase_renewal_and_auto_renewal_carry_valid_receipts(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, plan
) -> None:
    owner = 7770001
    checkout = await billing.checkout.purchase(
        make_order(owner=owner, save_payment_method=True, customer_email="ivan@example.com")
    )
    [first] = await payments_of(pool, checkout.tenant_id)
    receipt = receipt_of(yookassa_standin, first["provider_payment_id"])
    assert receipt == {
        "customer": {"email": "ivan@example.com"},
        "items": [
            {
                "description": first["description"],
                "quantity": "1.00",
                "amount": {"value": "990.00", "currency": "RUB"},
                "vat_code": 11,
                "payment_subject": "service",
                "payment_mode": "full_payment",
            }
        ],
        "tax_system_code": 1,
    }
    await pay(billing, yookassa_standin, first["provider_payment_id"])

    # The owner renews from "My bots" without typing the contact again: the stored one is used.
    renewal = await billing.checkout.renew(tenant_id=checkout.tenant_id, owner_telegram_id=owner)
    second = (await payments_of(pool, checkout.tenant_id))[-1]
    assert second["id"] == renewal.payment_id and second["purpose"] == "renewal"
    receipt = receipt_of(yookassa_standin, second["provider_payment_id"])
    assert receipt["customer"] == {"email": "ivan@example.com"}
    await pay(billing, yookassa_standin, second["provider_payment_id"])

    # The owner switches receipts to a phone; the automatic charge of the saved card sends there.
    changed = await billing.contacts.change(
        owner_telegram_id=owner, tenant_id=checkout.tenant_id, text="+7 (900) 123-45-67"
    )
    assert changed.phone == "79001234567" and changed.email is None
    end = (
        await pool.fetchrow(
            "SELECT current_period_end FROM control.subscriptions WHERE tenant_id = $1",
            checkout.tenant_id,
        )
    )["current_period_end"]
    report = await billing.lifecycle.run_once(
        end - timedelta(hours=12), tenant_ids=[checkout.tenant_id]
    )
    assert report.charged == 1 and report.errors == 0
    third = (await payments_of(pool, checkout.tenant_id))[-1]
    assert third["purpose"] == "auto_renewal" and third["status"] == "succeeded"
    receipt = receipt_of(yookassa_standin, third["provider_payment_id"])
    assert receipt["customer"] == {"phone": "79001234567"}
    assert receipt["items"][0]["amount"] == {"value": "990.00", "currency": "RUB"}
    audit = await pool.fetchrow(
        "SELECT * FROM control.audit_log WHERE action = 'receipt_contact.change' AND target = $1",
        checkout.tenant_slug,
    )
    assert audit["details"] == {"contact": "+7 *** *** ** 67"}  # no phone number in the log

    # Everything the stand-in holds for this shop carried a receipt and registered it.
    for payment in await payments_of(pool, checkout.tenant_id):
        remote = yookassa_standin.ledger.payments[payment["provider_payment_id"]]
        assert remote.to_api()["receipt_registration"] == "succeeded"


async def test_a_phone_is_accepted_instead_of_an_email(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    checkout = await billing.checkout.purchase(make_order(customer_phone="8 900 765-43-21"))
    [row] = await payments_of(pool, checkout.tenant_id)
    assert row["metadata"]["receipt"] == {"phone": "79007654321"}
    assert receipt_of(yookassa_standin, row["provider_payment_id"])["customer"] == {
        "phone": "79007654321"
    }


@pytest.mark.parametrize(
    ("typed", "email", "phone"),
    [
        ("ivan@example.com", "ivan@example.com", None),
        ("+7 900 123-45-67", None, "79001234567"),
        ("89001234567", None, "79001234567"),
        ("(900)1234567 ", None, None),
        ("ivan@", None, None),
        ("call me", None, None),
    ],
)
def test_contacts_as_people_type_them(typed: str, email: str | None, phone: str | None) -> None:
    if email is None and phone is None:
        with pytest.raises(ValidationError, match="contact"):
            parse_contact(typed)
        return
    contact = parse_contact(typed)
    assert (contact.email, contact.phone) == (email, phone)


async def test_a_purchase_without_a_contact_is_refused_before_yookassa(
    billing: Billing, yookassa_standin: YooKassaStandIn, make_order
) -> None:
    with pytest.raises(ValidationError, match="e-mail address or a phone number"):
        await billing.checkout.purchase(make_order())
    with pytest.raises(ValidationError, match="e-mail"):
        await billing.checkout.purchase(make_order(customer_email="not an email"))
    assert yookassa_standin.ledger.payments == {}


async def test_a_payment_without_a_receipt_is_refused_by_the_standin(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, secret_box
) -> None:
    """Receipts off on our side, required by the shop: YooKassa (the stand-in) refuses, so the
    receipts the other tests see accepted were really checked."""
    careless = type(billing.checkout)(
        pool=pool,
        provider=billing.provider,
        payments=billing.payments,
        secrets=secret_box,
        config=receipts_config(receipts=False),
    )
    with pytest.raises(ProviderRejected) as refused:
        await careless.purchase(make_order(customer_email="ivan@example.com"))
    assert refused.value.status == 400 and refused.value.parameter == "receipt"
    row = await pool.fetchrow(
        "SELECT * FROM control.payments WHERE status = 'canceled' AND cancellation_reason ="
        " 'rejected: invalid_request' ORDER BY created_at DESC LIMIT 1"
    )
    assert row is not None and row["provider_payment_id"] is None
    assert yookassa_standin.ledger.payments == {}


async def test_a_shop_with_several_tax_systems_gets_its_code(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, secret_box
) -> None:
    yookassa_standin.ledger.receipts = type(yookassa_standin.ledger.receipts)(
        required=True, tax_system_required=True
    )
    without_code = type(billing.checkout)(
        pool=pool,
        provider=billing.provider,
        payments=billing.payments,
        secrets=secret_box,
        config=receipts_config(tax_system_code=None),
    )
    with pytest.raises(ProviderRejected) as refused:
        await without_code.purchase(make_order(customer_email="ivan@example.com"))
    assert refused.value.parameter == "receipt.tax_system_code"
    checkout = await billing.checkout.purchase(make_order(customer_email="ivan@example.com"))
    assert checkout.amount == Decimal("990.00")
