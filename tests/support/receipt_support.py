"""Helpers of the receipt and refund tests (issue 18): a stand-in acting as a shop on YooKassa's
54-FZ solution, billing that sends receipts, and a paid purchase to refund."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg

from fleet.billing.checkout import Checkout, Order
from fleet.billing.config import BillingConfig
from fleet.billing.wiring import Billing
from sandbox.testing import fast_notifier_config
from sandbox.yookassa import YooKassaStandIn


async def strict_standin(*, tax_system: bool = False) -> AsyncIterator[YooKassaStandIn]:
    """A stand-in that refuses any payment (or partial refund) without a valid receipt."""
    async with YooKassaStandIn.start(
        host="127.0.0.1",
        port=0,
        notifier=fast_notifier_config(),
        require_receipts=True,
        require_tax_system=tax_system,
    ) as standin:
        yield standin


def receipts_config(**overrides: object) -> BillingConfig:
    """The billing settings of a shop that sends receipts (VAT 22% from 2026: code 11)."""
    values: dict[str, object] = {
        "return_url": "https://t.me/botfleet_sales_bot",
        "grace": timedelta(days=3),
        "retention": timedelta(days=30),
        "deletion_warning": timedelta(days=7),
        "reminder_days": (3, 1),
        "autorenew_lead": timedelta(hours=24),
        "receipts": True,
        "vat_code": 11,
        "tax_system_code": 1,
    }
    values.update(overrides)
    return BillingConfig(**values)  # type: ignore[arg-type]


async def pay(billing: Billing, standin: YooKassaStandIn, provider_payment_id: str) -> None:
    """The buyer pays on the stand-in; the result is applied as the webhook would (fetched)."""
    standin.succeed(provider_payment_id)
    remote = await billing.provider.get_payment(provider_payment_id)
    await billing.payments.apply(remote)


async def paid_purchase(
    billing: Billing, standin: YooKassaStandIn, pool: asyncpg.Pool, order: Order
) -> tuple[Checkout, asyncpg.Record]:
    """A purchase paid and applied; returns the checkout and our (succeeded) payment row."""
    checkout = await billing.checkout.purchase(order)
    row = await pool.fetchrow("SELECT * FROM control.payments WHERE id = $1", checkout.payment_id)
    await pay(billing, standin, row["provider_payment_id"])
    row = await pool.fetchrow("SELECT * FROM control.payments WHERE id = $1", checkout.payment_id)
    assert row["status"] == "succeeded"
    return checkout, row
