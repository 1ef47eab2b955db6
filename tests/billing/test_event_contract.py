"""The outbox's events are a typed contract (``schemas/events.py``).

Every event billing and the lifecycle emit is produced here by the real code paths (a purchase paid,
a payment cancelled, reminders, expiry, suspension, deletion warning, deletion, a payment that arrives
for a deleted bot, an auto-renewal refused), read back from ``control.events`` and rendered by the
sales bot's own :meth:`OutboxDelivery.render` in every locale, with jinja2's ``StrictUndefined``: a
field a template needs and the producer forgot fails here. The deploy worker's kinds are covered in
``tests/deploy_worker/test_event_contract_worker.py``; the catalogue checks at the end make sure no kind
is left without a model or a template.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from fleet.billing.payments import PaymentOutcome
from fleet.billing.wiring import Billing
from sales_bot.outbox import OutboxDelivery
from sandbox.yookassa import YooKassaStandIn
from schemas.events import (
    EVENTS,
    OWNER_EVENT_KINDS,
    EventContractError,
    TenantSuspended,
    parse_event,
)
from templates import LOCALES, Texts
from tests.support.billing_fixtures import FakeClock

TEXTS = Texts("sales_bot")
BILLING_KINDS = {
    "payment.succeeded",
    "payment.canceled",
    "payment.refund_needed",
    "subscription.reminder",
    "subscription.expired",
    "subscription.renewal_failed",
    "tenant.suspended",
    "tenant.deletion_warning",
    "tenant.deleted",
}


def _renderer() -> OutboxDelivery:
    # render() needs neither the pool nor the bot: it is the pure part of delivery.
    return OutboxDelivery(pool=None, bot=None, texts=TEXTS, support="@botfleet_help")  # type: ignore[arg-type]


def render_everywhere(kind: str, payload: dict[str, Any]) -> list[str]:
    """The event in every locale, as the sales bot renders it."""
    event = parse_event(kind, payload)
    outbox = _renderer()
    return [
        outbox.render(event, locale=locale, bot="shop_bot", timezone="Europe/Moscow")
        for locale in LOCALES
    ]


async def _provider_id(pool: asyncpg.Pool, payment_id: object) -> str:
    return str(
        await pool.fetchval(
            "SELECT provider_payment_id FROM control.payments WHERE id = $1", payment_id
        )
    )


async def _settle(
    billing: Billing, standin: YooKassaStandIn, pool: asyncpg.Pool, payment_id: object, *, ok: bool
) -> None:
    provider_id = await _provider_id(pool, payment_id)
    if ok:
        standin.succeed(provider_id)
    else:
        standin.cancel(provider_id)
    result = await billing.payments.apply(await billing.provider.get_payment(provider_id))
    assert result.outcome is (PaymentOutcome.APPLIED if ok else PaymentOutcome.CANCELED), result


async def test_every_billing_event_renders_in_every_locale(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, clock: FakeClock
) -> None:
    owner = 5552001
    # A first payment cancelled, then a purchase paid with the card saved for auto-renewal.
    first = await billing.checkout.purchase(make_order(owner=owner, save_payment_method=True))
    await _settle(billing, yookassa_standin, pool, first.payment_id, ok=False)
    checkout = await billing.checkout.renew(
        tenant_id=first.tenant_id,
        owner_telegram_id=owner,
        save_payment_method=True,
        autopay_consent={"amount": "990.00", "period_days": 30, "agreed_at": "2026-01-01"},
    )
    await _settle(billing, yookassa_standin, pool, checkout.payment_id, ok=True)
    tid = first.tenant_id
    end = await pool.fetchval(
        "SELECT current_period_end FROM control.subscriptions WHERE tenant_id = $1", tid
    )
    run = billing.lifecycle.run_once

    # The bank no longer knows the saved card: the auto-renewal charge is refused.
    yookassa_standin.ledger.saved_methods.clear()
    await run(end - timedelta(hours=12), tenant_ids=[tid])
    await billing.accounts.set_auto_renew(owner_telegram_id=owner, tenant_id=tid, enabled=False)

    await run(end - timedelta(days=3), tenant_ids=[tid])  # reminder
    await run(end + timedelta(minutes=1), tenant_ids=[tid])  # expired, grace
    await run(end + timedelta(days=4), tenant_ids=[tid])  # suspended for non-payment
    await run(end + timedelta(days=60), tenant_ids=[tid])  # deletion warning
    # A payment started before the deletion is paid after it: an operator must refund it.
    late = await billing.checkout.renew(tenant_id=tid, owner_telegram_id=owner)
    await run(end + timedelta(days=100), tenant_ids=[tid])  # deleted after retention
    await _settle(billing, yookassa_standin, pool, late.payment_id, ok=True)

    rows = await pool.fetch(
        "SELECT kind, payload FROM control.events WHERE tenant_id = $1 ORDER BY id", tid
    )
    kinds = {row["kind"] for row in rows}
    assert kinds == BILLING_KINDS, sorted(BILLING_KINDS ^ kinds)
    for row in rows:
        for text in render_everywhere(row["kind"], row["payload"]):
            assert "shop_bot" in text, (row["kind"], text)
            assert "None" not in text and "{{" not in text, (row["kind"], text)
    suspended = [
        parse_event(r["kind"], r["payload"]) for r in rows if r["kind"] == "tenant.suspended"
    ]
    assert suspended == [TenantSuspended(reason="unpaid", delete_at=suspended[0].delete_at)]


def test_every_owner_kind_has_a_template_in_every_locale_and_no_template_lacks_a_kind() -> None:
    for locale in LOCALES:
        templates = {key for key in TEXTS.keys(locale) if key.startswith("event_")}
        assert templates == {EVENTS[kind].template() for kind in OWNER_EVENT_KINDS}, locale


def test_a_payload_breaking_its_contract_says_what_is_wrong() -> None:
    with pytest.raises(EventContractError, match="delete_at"):
        parse_event("tenant.suspended", {"reason": "unpaid"})
    with pytest.raises(EventContractError, match="reason"):
        parse_event("tenant.suspended", {"previous_status": "active"})
    with pytest.raises(EventContractError, match="unknown event kind"):
        parse_event("tenant.exploded", {})
