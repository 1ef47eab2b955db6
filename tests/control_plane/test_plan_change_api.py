"""The admin API's plan changes and per-tenant payment list, over HTTP, with the YooKassa stand-in
creating the upgrade payment and notifying the webhook: quote, upgrade (many concurrent requests make
one payment), payment, downgrade at period end, and the errors that say what to fix."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx
import pytest_asyncio
from fastapi import FastAPI

from fleet.billing.wiring import Billing
from fleet.repositories.plans import PlanRepository
from sandbox.yookassa import YooKassaStandIn
from tests.support.billing_fixtures import (  # noqa: F401  (fixtures are found by name)
    _cleanup_plan,
    billing,
    billing_config,
    clock,
    make_order,
    plan,
    provider,
    secret_box,
    webhook,
    yookassa_sandbox,
    yookassa_standin,
)

API = "/api/v1/tenants"


@pytest_asyncio.fixture
async def pro(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Record]:
    code = "p" + secrets.token_hex(5)
    row = await PlanRepository(pool).insert(
        code=code, name=f"Pro {code}", price=Decimal("1990.00"), period_days=30
    )
    yield row
    await pool.execute(
        "DELETE FROM control.tenants WHERE id IN (SELECT tenant_id FROM control.subscriptions"
        " WHERE plan_code = $1 OR scheduled_plan_code = $1)",
        code,
    )
    await _cleanup_plan(pool, code)


async def _paid_tenant(
    billing: Billing,  # noqa: F811
    standin: YooKassaStandIn,
    pool: asyncpg.Pool,
    order,
) -> str:
    checkout = await billing.checkout.purchase(order)
    provider_id = await pool.fetchval(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", checkout.payment_id
    )
    standin.succeed(provider_id)
    await standin.wait_notifications()
    return checkout.tenant_slug


async def test_plan_change_through_the_api(
    app: FastAPI,
    admin: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    webhook,  # noqa: F811
    yookassa_standin: YooKassaStandIn,  # noqa: F811
    pool: asyncpg.Pool,
    make_order,  # noqa: F811
    plan,  # noqa: F811
    pro: asyncpg.Record,
) -> None:
    app.state.billing = billing
    slug = await _paid_tenant(billing, yookassa_standin, pool, make_order())

    quote = await admin.get(f"{API}/{slug}/plan-change", params={"plan_code": pro["code"]})
    assert quote.status_code == 200, quote.text
    assert quote.json()["kind"] == "upgrade_paid"
    assert quote.json()["credit"] == "990.00" and quote.json()["amount_due"] == "1000.00"

    # Twenty admins press at once: one payment, one checkout.
    answers = await asyncio.gather(
        *(
            admin.post(f"{API}/{slug}/plan-change", json={"plan_code": pro["code"]})
            for _ in range(20)
        )
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["payment_id"] for a in answers}) == 1
    assert len({a.json()["confirmation_url"] for a in answers}) == 1
    payment_id = answers[0].json()["payment_id"]
    provider_id = await pool.fetchval(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", payment_id
    )
    yookassa_standin.succeed(provider_id)
    await yookassa_standin.wait_notifications()

    assert (
        await pool.fetchval(
            "SELECT s.plan_code FROM control.subscriptions s JOIN control.tenants t ON t.id = s.tenant_id"
            " WHERE t.slug = $1",
            slug,
        )
        == pro["code"]
    )

    # The tenant's payments, newest first, in pages.
    page = await admin.get("/api/v1/payments", params={"tenant": slug, "limit": 1})
    assert page.status_code == 200
    [newest] = page.json()["items"]
    assert newest["purpose"] == "upgrade" and newest["amount"] == "1000.00"
    assert newest["status"] == "succeeded"
    older = await admin.get(
        "/api/v1/payments",
        params={"tenant": slug, "limit": 1, "cursor": page.json()["next_cursor"]},
    )
    assert [p["purpose"] for p in older.json()["items"]] == ["purchase"]

    # A downgrade waits for the end of the paid time; asked twice, it is scheduled once.
    for _ in range(2):
        down = await admin.post(
            f"{API}/{slug}/plan-change",
            json={"plan_code": plan["code"]},
            headers={"Idempotency-Key": secrets.token_hex(8)},
        )
        assert down.status_code == 200, down.text
    assert down.json()["kind"] == "unchanged" and down.json()["effective_at"]
    entries = await pool.fetch(
        "SELECT actor, details FROM control.audit_log WHERE target = $1"
        " AND action = 'subscription.plan_change' ORDER BY id",
        slug,
    )
    assert [e["details"]["kind"] for e in entries] == ["upgrade_paid", "at_period_end"]
    assert len({e["actor"] for e in entries}) == 1  # the admin's key


async def test_plan_change_errors_say_what_to_fix(
    app_factory,
    admin: httpx.AsyncClient,
    app: FastAPI,
    billing: Billing,  # noqa: F811
    yookassa_standin: YooKassaStandIn,  # noqa: F811
    webhook,  # noqa: F811
    pool: asyncpg.Pool,
    make_order,  # noqa: F811
    plan,  # noqa: F811
) -> None:
    # Without YooKassa settings there is no billing to change plans with.
    unconfigured = await admin.post(f"{API}/nosuchtenant/plan-change", json={"plan_code": "pro"})
    assert unconfigured.status_code == 503
    app.state.billing = billing
    slug = await _paid_tenant(billing, yookassa_standin, pool, make_order())
    missing = await admin.post(f"{API}/nosuchtenant/plan-change", json={"plan_code": "pro"})
    assert missing.status_code == 404
    bad = await admin.post(f"{API}/{slug}/plan-change", json={"plan_code": "Not A Code"})
    assert bad.status_code == 422 and "plan_code" in bad.text
    unknown = await admin.post(f"{API}/{slug}/plan-change", json={"plan_code": "nosuchplan"})
    assert unknown.status_code == 422 and "no plan 'nosuchplan' on sale" in unknown.text
