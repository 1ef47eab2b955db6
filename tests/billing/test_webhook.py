"""The YooKassa webhook end to end: the stand-in notifies our control plane over HTTP from its
network, the payment is fetched from the stand-in's API and applied exactly once."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import asyncpg
import httpx
import pytest

from fleet.billing.wiring import Billing
from sandbox.yookassa import YooKassaSandbox, YooKassaStandIn
from tests.support.billing_fixtures import YOOKASSA_IP


async def _state(pool: asyncpg.Pool, tenant_id: int) -> dict[str, object]:
    tenant = await pool.fetchrow("SELECT * FROM control.tenants WHERE id = $1", tenant_id)
    subscription = await pool.fetchrow(
        "SELECT * FROM control.subscriptions WHERE tenant_id = $1", tenant_id
    )
    payments = await pool.fetch(
        "SELECT * FROM control.payments WHERE tenant_id = $1 ORDER BY created_at", tenant_id
    )
    jobs = await pool.fetch(
        "SELECT kind, status FROM control.jobs WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    events = await pool.fetch(
        "SELECT kind, payload FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    return {
        "tenant": tenant,
        "subscription": subscription,
        "payments": payments,
        "jobs": [(j["kind"], j["status"]) for j in jobs],
        "events": [e["kind"] for e in events],
        "event_payloads": [e["payload"] for e in events],
    }


def _local_client(source: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=source))


def _notification(event: str, provider_id: str, **extra: object) -> dict[str, object]:
    return {"type": "notification", "event": event, "object": {"id": provider_id, **extra}}


async def test_purchase_paid_on_the_standin_enqueues_provisioning(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order, plan
) -> None:
    checkout = await billing.checkout.purchase(make_order())
    assert checkout.amount == Decimal("990.00") and checkout.currency == "RUB"
    before = await _state(pool, checkout.tenant_id)
    assert before["tenant"]["status"] == "new"
    assert before["tenant"]["desired_state"] == "stopped"
    assert before["jobs"] == [] and before["subscription"] is None
    row = before["payments"][0]
    assert row["status"] == "pending" and row["confirmation_url"] == checkout.confirmation_url

    yookassa_standin.succeed(row["provider_payment_id"])
    await yookassa_standin.wait_notifications()

    after = await _state(pool, checkout.tenant_id)
    payment = after["payments"][0]
    assert payment["status"] == "succeeded" and payment["applied_at"] is not None
    assert after["tenant"]["status"] == "provisioning"
    assert after["tenant"]["desired_state"] == "running"
    assert after["jobs"] == [("provision", "queued")]
    assert after["events"] == ["payment.succeeded"]
    assert after["event_payloads"][0]["action"] == "provision"
    subscription = after["subscription"]
    assert subscription["status"] == "active"
    assert subscription["current_period_end"] - subscription["current_period_start"] == (
        __import__("datetime").timedelta(days=30)
    )


async def test_notification_replayed_ten_times_also_concurrently_applies_once(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    checkout = await billing.checkout.purchase(make_order())
    provider_id = (await _state(pool, checkout.tenant_id))["payments"][0]["provider_payment_id"]
    yookassa_standin.succeed(provider_id)
    await yookassa_standin.wait_notifications()
    first = await _state(pool, checkout.tenant_id)
    end = first["subscription"]["current_period_end"]

    body = _notification("payment.succeeded", provider_id, status="succeeded")
    async with _local_client(YOOKASSA_IP) as client:
        for _ in range(10):
            answer = await client.post(webhook.url, json=body)
            assert answer.status_code == 200 and answer.json() == {"outcome": "duplicate"}
        answers = await asyncio.gather(*(client.post(webhook.url, json=body) for _ in range(10)))
    assert {a.status_code for a in answers} == {200}

    after = await _state(pool, checkout.tenant_id)
    assert len(after["payments"]) == 1
    assert after["subscription"]["current_period_end"] == end
    assert after["jobs"] == [("provision", "queued")]
    assert after["events"] == ["payment.succeeded"]


async def test_concurrent_first_deliveries_extend_once(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    yookassa_standin.set_webhook(None)  # we deliver ourselves, all at once
    checkout = await billing.checkout.purchase(make_order())
    provider_id = (await _state(pool, checkout.tenant_id))["payments"][0]["provider_payment_id"]
    yookassa_standin.succeed(provider_id)
    body = _notification("payment.succeeded", provider_id)
    async with _local_client(YOOKASSA_IP) as client:
        answers = await asyncio.gather(*(client.post(webhook.url, json=body) for _ in range(10)))
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["applied"] + ["duplicate"] * 9
    after = await _state(pool, checkout.tenant_id)
    assert after["jobs"] == [("provision", "queued")]
    assert after["events"] == ["payment.succeeded"]
    applied = await pool.fetchval(
        "SELECT count(*) FROM control.audit_log WHERE action = 'payment.applied' AND target = $1",
        after["tenant"]["slug"],
    )
    assert applied == 1


async def test_sender_outside_yookassa_networks_gets_403(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    yookassa_standin.set_webhook(None)
    checkout = await billing.checkout.purchase(make_order())
    provider_id = (await _state(pool, checkout.tenant_id))["payments"][0]["provider_payment_id"]
    yookassa_standin.succeed(provider_id)
    body = _notification("payment.succeeded", provider_id, status="succeeded")
    async with _local_client("127.0.0.1") as client:
        answer = await client.post(webhook.url, json=body, headers={"X-Forwarded-For": YOOKASSA_IP})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    after = await _state(pool, checkout.tenant_id)
    assert after["payments"][0]["status"] == "pending"
    assert after["payments"][0]["applied_at"] is None
    assert after["subscription"] is None and after["jobs"] == [] and after["events"] == []
    assert after["tenant"]["desired_state"] == "stopped"


async def test_body_saying_succeeded_for_a_pending_payment_activates_nothing(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    checkout = await billing.checkout.purchase(make_order())
    provider_id = (await _state(pool, checkout.tenant_id))["payments"][0]["provider_payment_id"]
    forged = _notification(
        "payment.succeeded",
        provider_id,
        status="succeeded",
        paid=True,
        amount={"value": "990.00", "currency": "RUB"},
        metadata={"tenant_id": str(checkout.tenant_id), "payment_id": str(checkout.payment_id)},
    )
    async with _local_client(YOOKASSA_IP) as client:
        answer = await client.post(webhook.url, json=forged)
    assert answer.status_code == 200 and answer.json() == {"outcome": "ignored"}
    after = await _state(pool, checkout.tenant_id)
    assert after["payments"][0]["status"] == "pending"
    assert after["subscription"] is None and after["jobs"] == [] and after["events"] == []


async def test_paid_payment_with_another_amount_activates_nothing(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    yookassa_standin.set_webhook(None)
    checkout = await billing.checkout.purchase(make_order())
    ours = (await _state(pool, checkout.tenant_id))["payments"][0]
    # A cheaper payment carrying our metadata (as if crafted to unlock our order), really paid.
    cheap = await billing.provider.create_payment(
        idempotence_key="c0ffee00-0000-4000-8000-" + ours["id"].hex[-12:],
        amount=Decimal("1.00"),
        currency="RUB",
        description="cheap",
        metadata={"tenant_id": str(checkout.tenant_id), "payment_id": str(ours["id"])},
        return_url="https://example.com",
    )
    yookassa_standin.succeed(cheap.id)
    async with _local_client(YOOKASSA_IP) as client:
        answer = await client.post(webhook.url, json=_notification("payment.succeeded", cheap.id))
    assert answer.status_code == 200 and answer.json() == {"outcome": "ignored"}
    after = await _state(pool, checkout.tenant_id)
    assert after["payments"][0]["applied_at"] is None
    assert after["subscription"] is None and after["jobs"] == [] and after["events"] == []
    reason = await pool.fetchval(
        "SELECT details->>'reason' FROM control.audit_log WHERE action = 'payment.mismatch'"
        " AND target = $1",
        str(ours["id"]),
    )
    assert "differs" in reason


async def test_canceled_payment_is_marked_and_the_owner_told(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    checkout = await billing.checkout.purchase(make_order())
    provider_id = (await _state(pool, checkout.tenant_id))["payments"][0]["provider_payment_id"]
    yookassa_standin.cancel(provider_id, reason="insufficient_funds")
    await yookassa_standin.wait_notifications()
    async with _local_client(YOOKASSA_IP) as client:  # a replay changes nothing
        answer = await client.post(webhook.url, json=_notification("payment.canceled", provider_id))
    assert answer.json() == {"outcome": "duplicate"}
    after = await _state(pool, checkout.tenant_id)
    payment = after["payments"][0]
    assert payment["status"] == "canceled"
    assert payment["cancellation_reason"] == "insufficient_funds"
    assert after["events"] == ["payment.canceled"]
    assert after["event_payloads"][0]["reason"] == "insufficient_funds"
    assert after["subscription"] is None and after["jobs"] == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", json.dumps({"type": "notification", "event": "x"}).encode()],
)
async def test_malformed_bodies_are_refused(webhook, body: bytes) -> None:
    async with _local_client(YOOKASSA_IP) as client:
        answer = await client.post(webhook.url, content=body)
    assert answer.status_code == 400


async def test_unknown_payment_is_acknowledged_and_ignored(webhook) -> None:
    body = _notification("payment.succeeded", "2b0a7a4b-000f-5000-9000-1c1a3c0bde8f")
    async with _local_client(YOOKASSA_IP) as client:
        answer = await client.post(webhook.url, json=body)
    assert answer.status_code == 200 and answer.json() == {"outcome": "ignored"}


async def test_yookassa_api_down_answers_503_so_yookassa_retries(
    billing: Billing, webhook, yookassa_standin: YooKassaStandIn, yookassa_sandbox: YooKassaSandbox,
    pool, make_order,
) -> None:  # fmt: skip
    yookassa_standin.set_webhook(None)
    checkout = await billing.checkout.purchase(make_order())
    provider_id = (await _state(pool, checkout.tenant_id))["payments"][0]["provider_payment_id"]
    yookassa_standin.succeed(provider_id)
    await yookassa_sandbox.inject_fault("*", status=500, count=10)
    async with _local_client(YOOKASSA_IP) as client:
        answer = await client.post(
            webhook.url, json=_notification("payment.succeeded", provider_id)
        )
        assert answer.status_code == 503
        await yookassa_sandbox.request("DELETE", "/faults")
        answer = await client.post(
            webhook.url, json=_notification("payment.succeeded", provider_id)
        )
    assert answer.json() == {"outcome": "applied"}
