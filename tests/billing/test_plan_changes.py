"""Plan changes against the YooKassa stand-in over HTTP, with an injected clock: an upgrade at once
with the unused time credited (right after paying, on the last day, with a credit larger than the
new price, with a stale quote), a downgrade at the end of the paid time applied by the lifecycle,
cancelling a scheduled change, and many concurrent taps doing one thing."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from fleet.billing.payments import PaymentOutcome
from fleet.billing.plan_changes import ChangeKind
from fleet.billing.wiring import Billing
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories.plans import PlanRepository
from fleet.secrets import generate_master_key
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn
from tests.support.billing_fixtures import _cleanup_plan

PlanFactory = Callable[..., Awaitable[asyncpg.Record]]


@pytest_asyncio.fixture
async def make_plan(pool: asyncpg.Pool) -> AsyncIterator[PlanFactory]:
    """More plans of this test alone (removed with the tenants that use them)."""
    codes: list[str] = []

    async def make(*, price: str, period_days: int = 30, name: str = "Pro") -> asyncpg.Record:
        code = "p" + secrets.token_hex(5)
        codes.append(code)
        return await PlanRepository(pool).insert(
            code=code, name=f"{name} {code}", price=Decimal(price), period_days=period_days
        )

    yield make
    for code in codes:
        await pool.execute(
            "DELETE FROM control.tenants WHERE id IN (SELECT tenant_id FROM control.subscriptions"
            " WHERE plan_code = $1 OR scheduled_plan_code = $1)",
            code,
        )
        await _cleanup_plan(pool, code)


async def _paid_tenant(
    billing: Billing, standin: YooKassaStandIn, pool: asyncpg.Pool, order
) -> tuple[int, asyncpg.Record]:
    checkout = await billing.checkout.purchase(order)
    await _pay(billing, standin, pool, checkout.payment_id)
    return checkout.tenant_id, await _sub(pool, checkout.tenant_id)


async def _pay(billing: Billing, standin: YooKassaStandIn, pool: asyncpg.Pool, payment_id) -> None:
    provider_id = await pool.fetchval(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", payment_id
    )
    standin.succeed(provider_id)
    result = await billing.payments.apply(await billing.provider.get_payment(provider_id))
    assert result.outcome is PaymentOutcome.APPLIED


async def _sub(pool: asyncpg.Pool, tenant_id: int) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT s.*, t.plan_code AS tenant_plan FROM control.subscriptions s"
        " JOIN control.tenants t ON t.id = s.tenant_id WHERE s.tenant_id = $1",
        tenant_id,
    )


async def _audit(pool: asyncpg.Pool, slug: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM control.audit_log WHERE target = $1 AND action LIKE 'subscription.plan%'"
        " ORDER BY id",
        slug,
    )


async def test_upgrade_right_after_paying_charges_the_difference_and_starts_a_full_period(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, clock
) -> None:
    owner = 7710001
    tid, _ = await _paid_tenant(billing, yookassa_standin, pool, make_order(owner=owner))
    pro = await make_plan(price="1990.00")
    clock.advance(minutes=5)

    quote = await billing.plan_changes.quote(
        tenant_id=tid, plan_code=pro["code"], owner_telegram_id=owner
    )
    assert quote.kind is ChangeKind.UPGRADE_PAID
    # 5 minutes of 30 days used: 990 * (1 - 5 / 43200) = 989.885..., rounded down to the kopeck.
    assert quote.credit == Decimal("989.88") and quote.amount_due == Decimal("1000.12")

    change = await billing.plan_changes.change(
        tenant_id=tid, plan_code=pro["code"], owner_telegram_id=owner, actor=f"telegram:{owner}"
    )
    assert change.checkout is not None and change.amount_due == Decimal("1000.12")
    assert (await _sub(pool, tid))["plan_code"] != pro["code"]  # nothing changes until paid
    remote = await billing.provider.get_payment(
        await pool.fetchval(
            "SELECT provider_payment_id FROM control.payments WHERE id = $1",
            change.checkout.payment_id,
        )
    )
    assert remote.amount == Decimal("1000.12")

    await _pay(billing, yookassa_standin, pool, change.checkout.payment_id)
    sub = await _sub(pool, tid)
    assert sub["plan_code"] == pro["code"] and sub["tenant_plan"] == pro["code"]
    assert sub["current_period_start"] == clock.now
    # Paid + credit = 1000.12 + 989.88 = 1990.00: exactly one period of the new plan.
    assert sub["current_period_end"] == clock.now + timedelta(days=30)
    payment = await pool.fetchrow(
        "SELECT * FROM control.payments WHERE id = $1", change.checkout.payment_id
    )
    assert payment["purpose"] == "upgrade" and payment["status"] == "succeeded"
    [entry] = await _audit(pool, change.slug)
    assert entry["actor"] == f"telegram:{owner}"
    assert entry["details"]["kind"] == "upgrade_paid"
    assert entry["details"]["credit"] == "989.88"


async def test_upgrade_on_the_last_day_charges_nearly_the_full_price(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, clock
) -> None:
    tid, sub = await _paid_tenant(billing, yookassa_standin, pool, make_order(owner=7710002))
    pro = await make_plan(price="1990.00")
    clock.now = sub["current_period_end"] - timedelta(hours=1)
    quote = await billing.plan_changes.quote(tenant_id=tid, plan_code=pro["code"])
    assert quote.kind is ChangeKind.UPGRADE_PAID
    assert quote.credit == Decimal("1.37")  # 990 / 30 / 24 = 1.375
    assert quote.amount_due == Decimal("1988.63")
    # After the period ended (grace): there is no paid time, the plan changes at once for free
    # and the next payment is at its price.
    clock.now = sub["current_period_end"] + timedelta(minutes=1)
    await billing.lifecycle.run_once(tenant_ids=[tid])
    change = await billing.plan_changes.change(tenant_id=tid, plan_code=pro["code"], actor="admin")
    assert change.kind is ChangeKind.IMMEDIATE and change.checkout is None
    assert (await _sub(pool, tid))["tenant_plan"] == pro["code"]
    renewal = await billing.checkout.renew(tenant_id=tid, owner_telegram_id=7710002)
    assert renewal.amount == Decimal("1990.00")


async def test_a_credit_larger_than_the_new_price_becomes_time_on_the_new_plan(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, clock
) -> None:
    yearly = await make_plan(price="9900.00", period_days=360, name="Year")
    monthly_pro = await make_plan(price="1500.00", period_days=30)  # 50/day against 27.5/day
    tid, sub = await _paid_tenant(
        billing, yookassa_standin, pool, make_order(owner=7710003, plan_code=yearly["code"])
    )
    clock.advance(days=180)  # half the year used: 4950.00 left
    # Twenty taps at once: one change, the others find it made.
    changes = await asyncio.gather(
        *(
            billing.plan_changes.change(
                tenant_id=tid, plan_code=monthly_pro["code"], actor="telegram:7710003"
            )
            for _ in range(20)
        )
    )
    [change] = [c for c in changes if c.kind is not ChangeKind.UNCHANGED]
    assert change.kind is ChangeKind.UPGRADE_CREDITED and change.checkout is None
    assert change.credit == Decimal("4950.00")
    sub = await _sub(pool, tid)
    assert sub["plan_code"] == monthly_pro["code"] and sub["current_period_start"] == clock.now
    assert sub["current_period_end"] == clock.now + timedelta(days=99)  # 30 * 4950 / 1500
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM control.payments WHERE tenant_id = $1 AND purpose = 'upgrade'",
            tid,
        )
        == 0
    )
    # Tapped again: already on that plan, nothing more happens.
    again = await billing.plan_changes.change(
        tenant_id=tid, plan_code=monthly_pro["code"], actor="telegram:7710003"
    )
    assert again.kind is ChangeKind.UNCHANGED
    assert (await _sub(pool, tid))["current_period_end"] == sub["current_period_end"]
    assert len(await _audit(pool, change.slug)) == 1


async def test_downgrade_waits_for_the_end_of_the_paid_time(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, clock, plan
) -> None:
    owner = 7710004
    pro = await make_plan(price="1990.00")
    tid, sub = await _paid_tenant(
        billing,
        yookassa_standin,
        pool,
        make_order(
            owner=owner,
            plan_code=pro["code"],
            save_payment_method=True,
            autopay_consent=billing.checkout.autopay_consent(pro),
        ),
    )
    end = sub["current_period_end"]
    clock.advance(days=10)
    change = await billing.plan_changes.change(
        tenant_id=tid, plan_code=plan["code"], owner_telegram_id=owner, actor=f"telegram:{owner}"
    )
    assert change.kind is ChangeKind.AT_PERIOD_END and change.effective_at == end
    sub = await _sub(pool, tid)
    assert sub["plan_code"] == pro["code"] and sub["scheduled_plan_code"] == plan["code"]
    assert sub["scheduled_plan_at"] == end

    # The reminder states the next period's terms: the new plan's price and when it is charged.
    await billing.lifecycle.run_once(end - timedelta(days=3), tenant_ids=[tid])
    reminder = await pool.fetchval(
        "SELECT payload FROM control.events WHERE tenant_id = $1"
        " AND kind = 'subscription.reminder'",
        tid,
    )
    assert reminder["amount"] == "990.00" and reminder["period_days"] == 30
    assert reminder["auto_renew"] and reminder["card"]
    assert reminder["charge_at"].startswith((end - timedelta(days=1)).date().isoformat())

    # The auto-renewal charge is at the new plan's price; the plan itself changes at the end.
    report = await billing.lifecycle.run_once(end - timedelta(hours=12), tenant_ids=[tid])
    assert report.charged == 1
    charge = await pool.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND purpose = 'auto_renewal'", tid
    )
    assert charge["amount"] == Decimal("990.00") and charge["plan_code"] == plan["code"]
    sub = await _sub(pool, tid)
    assert sub["plan_code"] == pro["code"] and sub["tenant_plan"] == pro["code"]
    assert sub["current_period_end"] == end + timedelta(days=30)
    # The next period is paid on the new plan: the change can no longer be called off.
    with pytest.raises(ConflictError):
        await billing.plan_changes.change(
            tenant_id=tid, plan_code=pro["code"], owner_telegram_id=owner, actor="x"
        )

    report = await billing.lifecycle.run_once(end + timedelta(minutes=1), tenant_ids=[tid])
    assert report.plans_changed == 1 and report.expired == 0
    sub = await _sub(pool, tid)
    assert sub["plan_code"] == plan["code"] and sub["tenant_plan"] == plan["code"]
    assert sub["scheduled_plan_code"] is None
    actions = [(e["action"], e["actor"]) for e in await _audit(pool, change.slug)]
    assert actions == [
        ("subscription.plan_change", f"telegram:{owner}"),
        ("subscription.plan_changed", "billing.lifecycle"),
    ]


async def test_choosing_the_current_plan_calls_off_a_scheduled_change(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, plan
) -> None:
    pro = await make_plan(price="1990.00")
    tid, _ = await _paid_tenant(
        billing, yookassa_standin, pool, make_order(owner=7710005, plan_code=pro["code"])
    )
    await billing.plan_changes.change(tenant_id=tid, plan_code=plan["code"], actor="a")
    renewal = await billing.checkout.renew(tenant_id=tid, owner_telegram_id=7710005)
    assert renewal.amount == Decimal("990.00")  # "Renew" pays the next period's plan
    kept = await billing.plan_changes.change(tenant_id=tid, plan_code=pro["code"], actor="a")
    assert kept.kind is ChangeKind.KEEP_CURRENT
    assert (await _sub(pool, tid))["scheduled_plan_code"] is None
    again = await billing.plan_changes.change(tenant_id=tid, plan_code=pro["code"], actor="a")
    assert again.kind is ChangeKind.UNCHANGED


async def test_a_stale_upgrade_quote_loses_nothing(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, clock
) -> None:
    """The owner opens an upgrade checkout, then renews by hand, then pays the upgrade: the
    renewal's period is credited too."""
    owner = 7710006
    tid, sub = await _paid_tenant(billing, yookassa_standin, pool, make_order(owner=owner))
    pro = await make_plan(price="1980.00")  # 66/day against 33/day
    change = await billing.plan_changes.change(tenant_id=tid, plan_code=pro["code"], actor="a")
    assert change.amount_due == Decimal("990.00")  # a full period of credit
    renewal = await billing.checkout.renew(tenant_id=tid, owner_telegram_id=owner)
    await _pay(billing, yookassa_standin, pool, renewal.payment_id)
    assert change.checkout is not None
    await _pay(billing, yookassa_standin, pool, change.checkout.payment_id)
    sub = await _sub(pool, tid)
    # 990 paid for the upgrade + 1980 of unused time (two periods of 990) = 1980 * 1.5.
    assert sub["plan_code"] == pro["code"]
    assert sub["current_period_end"] == clock.now + timedelta(days=45)


async def test_many_concurrent_taps_make_one_change(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, make_plan, plan
) -> None:
    owner = 7710007
    tid, _ = await _paid_tenant(billing, yookassa_standin, pool, make_order(owner=owner))
    pro = await make_plan(price="1990.00")

    async def tap(code: str):
        return await billing.plan_changes.change(
            tenant_id=tid, plan_code=code, owner_telegram_id=owner, actor=f"telegram:{owner}"
        )

    upgrades = await asyncio.gather(*(tap(pro["code"]) for _ in range(25)))
    urls = {u.checkout.confirmation_url for u in upgrades if u.checkout is not None}
    assert len(urls) == 1 and all(u.kind is ChangeKind.UPGRADE_PAID for u in upgrades)
    payments = await pool.fetch(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND purpose = 'upgrade'", tid
    )
    assert len(payments) == 1
    assert len([p for p in yookassa_standin.ledger.payments.values()
                if p.request.metadata.get("tenant_id") == str(tid)]) == 2  # fmt: skip
    await _pay(billing, yookassa_standin, pool, payments[0]["id"])

    # Back down to the cheaper plan, 25 taps at once: one schedule, one audit entry.
    downgrades = await asyncio.gather(*(tap(plan["code"]) for _ in range(25)))
    kinds = sorted(d.kind.value for d in downgrades)
    assert kinds == ["at_period_end"] + ["unchanged"] * 24
    entries = await _audit(pool, upgrades[0].slug)
    assert [e["details"]["kind"] for e in entries] == ["upgrade_paid", "at_period_end"]


async def test_bad_requests_say_what_is_wrong(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, plan
) -> None:
    tid, _ = await _paid_tenant(billing, yookassa_standin, pool, make_order(owner=7710008))
    with pytest.raises(ValidationError, match="no plan 'nosuchplan' on sale"):
        await billing.plan_changes.change(tenant_id=tid, plan_code="nosuchplan", actor="a")
    with pytest.raises(NotFoundError):
        await billing.plan_changes.change(
            tenant_id=tid, plan_code=plan["code"], owner_telegram_id=1, actor="a"
        )
    unchanged = await billing.plan_changes.change(tenant_id=tid, plan_code=plan["code"], actor="a")
    assert unchanged.kind is ChangeKind.UNCHANGED


async def test_the_cli_quotes_and_changes_plans(
    billing: Billing,
    yookassa_standin: YooKassaStandIn,
    pool,
    make_order,
    make_plan,
    plan,
    database_url: str,
) -> None:
    tid, _ = await _paid_tenant(billing, yookassa_standin, pool, make_order(owner=7710009))
    slug = await pool.fetchval("SELECT slug FROM control.tenants WHERE id = $1", tid)
    pro = await make_plan(price="1990.00")
    env = {
        "BOTFLEET_DATABASE_URL": database_url,
        "BOTFLEET_MASTER_KEY": generate_master_key(),
        "BOTFLEET_YOOKASSA_SHOP_ID": DEFAULT_SHOP_ID,
        "BOTFLEET_YOOKASSA_SECRET_KEY": DEFAULT_SECRET_KEY,
        "BOTFLEET_YOOKASSA_API_URL": yookassa_standin.api_url,
        "BOTFLEET_YOOKASSA_RETURN_URL": "https://t.me/botfleet_sales_bot",
    }

    def botfleet(*args: str) -> Result:
        return CliRunner().invoke(app, ["billing", "plan", *args], env=env)

    quoted = await asyncio.to_thread(botfleet, slug, pro["code"], "--quote", "--json")
    assert quoted.exit_code == 0, quoted.output
    assert json.loads(quoted.output)["kind"] == "upgrade_paid"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM control.payments WHERE tenant_id = $1 AND purpose = 'upgrade'",
            tid,
        )
        == 0
    )
    changed = await asyncio.to_thread(botfleet, slug, pro["code"], "--json")
    assert changed.exit_code == 0, changed.output
    shown = json.loads(changed.output)
    assert shown["confirmation_url"].startswith(yookassa_standin.base_url)
    assert Decimal(shown["amount_due"]) + Decimal(shown["credit"]) == Decimal("1990.00")
    missing = await asyncio.to_thread(botfleet, "nosuchtenant", pro["code"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    bad = await asyncio.to_thread(botfleet, slug, "nosuchplan")
    assert bad.exit_code == 2 and "no plan 'nosuchplan' on sale" in bad.output


async def test_a_card_is_saved_for_automatic_charges_only_with_consent(
    billing: Billing, make_order
) -> None:
    with pytest.raises(ValidationError, match="consent to the amount, the period"):
        await billing.checkout.purchase(make_order(save_payment_method=True, autopay_consent=None))
