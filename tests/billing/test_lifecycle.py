"""The subscription lifecycle with an injected clock: reminders, expiry, grace, suspension,
resumption by payment, renewal from the current end, auto-renewal, deletion after retention."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import asyncpg
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from fleet.billing.payments import PaymentOutcome
from fleet.billing.wiring import Billing
from fleet.repositories import subscriptions as subscription_repo
from fleet.secrets import generate_master_key
from sandbox.yookassa import YooKassaStandIn
from tests.support.billing_fixtures import FakeClock


async def _pay(billing: Billing, standin: YooKassaStandIn, pool: asyncpg.Pool, checkout) -> None:
    provider_id = await pool.fetchval(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", checkout.payment_id
    )
    standin.succeed(provider_id)
    result = await billing.payments.apply(await billing.provider.get_payment(provider_id))
    assert result.outcome is PaymentOutcome.APPLIED


async def _sub(pool: asyncpg.Pool, tenant_id: int) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT s.*, t.desired_state, t.status AS tenant_status FROM control.subscriptions s"
        " JOIN control.tenants t ON t.id = s.tenant_id WHERE s.tenant_id = $1",
        tenant_id,
    )


async def _events(pool: asyncpg.Pool, tenant_id: int) -> list[str]:
    rows = await pool.fetch(
        "SELECT kind FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    return [r["kind"] for r in rows]


async def _jobs(pool: asyncpg.Pool, tenant_id: int) -> list[str]:
    rows = await pool.fetch(
        "SELECT kind FROM control.jobs WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    return [r["kind"] for r in rows]


async def test_reminders_expiry_grace_suspension_and_resumption(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, clock: FakeClock
) -> None:
    owner = 5551001
    checkout = await billing.checkout.purchase(make_order(owner=owner))
    await _pay(billing, yookassa_standin, pool, checkout)
    tid = checkout.tenant_id
    end = (await _sub(pool, tid))["current_period_end"]
    run = billing.lifecycle.run_once

    assert (await run(end - timedelta(days=5), tenant_ids=[tid])).reminded == 0
    assert (await run(end - timedelta(days=3), tenant_ids=[tid])).reminded == 1
    assert (await run(end - timedelta(days=2), tenant_ids=[tid])).reminded == 0  # once per period
    assert (await run(end - timedelta(hours=20), tenant_ids=[tid])).reminded == 1
    assert (await run(end - timedelta(hours=1), tenant_ids=[tid])).reminded == 0
    assert await _events(pool, tid) == [
        "payment.succeeded", "subscription.reminder", "subscription.reminder"
    ]  # fmt: skip

    report = await run(end + timedelta(minutes=1), tenant_ids=[tid])
    assert report.expired == 1 and report.suspended == 0
    sub = await _sub(pool, tid)
    assert sub["status"] == "grace" and sub["desired_state"] == "running"

    report = await run(end + timedelta(days=3, minutes=1), tenant_ids=[tid])
    assert report.suspended == 1
    sub = await _sub(pool, tid)
    assert sub["status"] == "expired" and sub["desired_state"] == "stopped"
    assert await _jobs(pool, tid) == ["provision", "suspend"]
    assert (await _events(pool, tid))[-2:] == ["subscription.expired", "tenant.suspended"]
    assert (await run(end + timedelta(days=4), tenant_ids=[tid])).suspended == 0

    # Paying again resumes, and the new period starts today (the old one is long over).
    clock.now = end + timedelta(days=5)
    renewal = await billing.checkout.renew(tenant_id=tid, owner_telegram_id=owner)
    await _pay(billing, yookassa_standin, pool, renewal)
    sub = await _sub(pool, tid)
    assert sub["status"] == "active" and sub["desired_state"] == "running"
    assert sub["current_period_end"] == clock.now + timedelta(days=30)
    assert sub["reminders_sent"] == [] and sub["suspended_at"] is None
    assert await _jobs(pool, tid) == ["provision", "suspend", "resume"]


async def test_renewal_while_active_extends_from_the_current_end(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, clock: FakeClock
) -> None:
    checkout = await billing.checkout.purchase(make_order(owner=5551002))
    await _pay(billing, yookassa_standin, pool, checkout)
    end = (await _sub(pool, checkout.tenant_id))["current_period_end"]
    clock.advance(days=20)
    renewal = await billing.checkout.renew(tenant_id=checkout.tenant_id, owner_telegram_id=5551002)
    await _pay(billing, yookassa_standin, pool, renewal)
    sub = await _sub(pool, checkout.tenant_id)
    assert sub["current_period_end"] == end + timedelta(days=30)
    assert await _jobs(pool, checkout.tenant_id) == ["provision"]  # nothing new to start


async def test_deletion_after_retention_waits_for_the_warning(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    checkout = await billing.checkout.purchase(make_order())
    await _pay(billing, yookassa_standin, pool, checkout)
    tid = checkout.tenant_id
    end = (await _sub(pool, tid))["current_period_end"]
    run = billing.lifecycle.run_once
    await run(end + timedelta(days=3, minutes=1), tenant_ids=[tid])  # expired and suspended
    suspended_at = (await _sub(pool, tid))["suspended_at"]

    assert (await run(suspended_at + timedelta(days=22), tenant_ids=[tid])).warned == 0
    report = await run(suspended_at + timedelta(days=23), tenant_ids=[tid])
    assert report.warned == 1 and report.deleted == 0
    # The runner was down past retention: deletion still waits the warning's full lead.
    assert (await run(suspended_at + timedelta(days=29), tenant_ids=[tid])).deleted == 0
    report = await run(suspended_at + timedelta(days=30, minutes=1), tenant_ids=[tid])
    assert report.deleted == 1
    sub = await _sub(pool, tid)
    assert sub["status"] == "cancelled" and sub["desired_state"] == "deleted"
    job = await pool.fetchrow(
        "SELECT * FROM control.jobs WHERE tenant_id = $1 AND kind = 'deprovision'", tid
    )
    assert job["payload"] == {"export": True, "reason": "retention"}
    assert (await _events(pool, tid))[-2:] == ["tenant.deletion_warning", "tenant.deleted"]
    assert (await run(suspended_at + timedelta(days=40), tenant_ids=[tid])).deleted == 0


async def test_auto_renewal_charges_the_saved_card_once_per_period(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    owner = 5551003
    checkout = await billing.checkout.purchase(make_order(owner=owner, save_payment_method=True))
    await _pay(billing, yookassa_standin, pool, checkout)
    tid = checkout.tenant_id
    sub = await _sub(pool, tid)
    assert sub["auto_renew"] and sub["payment_method_id_enc"] and sub["payment_method_title"]
    end = sub["current_period_end"]

    report = await billing.lifecycle.run_once(end - timedelta(hours=12), tenant_ids=[tid])
    assert report.charged == 1
    assert (await _sub(pool, tid))["current_period_end"] == end + timedelta(days=30)
    again = await billing.lifecycle.run_once(end - timedelta(hours=11), tenant_ids=[tid])
    assert again.charged == 0
    purposes = await pool.fetch(
        "SELECT purpose, status FROM control.payments WHERE tenant_id = $1 ORDER BY created_at",
        tid,
    )
    assert [(p["purpose"], p["status"]) for p in purposes] == [
        ("purchase", "succeeded"), ("auto_renewal", "succeeded")
    ]  # fmt: skip

    # The owner turns auto-renewal off: the next period is not charged.
    bot = await billing.accounts.set_auto_renew(
        owner_telegram_id=owner, tenant_id=tid, enabled=False
    )
    assert bot.auto_renew is False
    later = await billing.lifecycle.run_once(
        end + timedelta(days=30) - timedelta(hours=12), tenant_ids=[tid]
    )
    assert later.charged == 0


async def test_abandoned_purchase_releases_the_token(
    billing: Billing, pool, make_order, clock: FakeClock
) -> None:
    order = make_order()
    checkout = await billing.checkout.purchase(order)
    report = await billing.lifecycle.run_once(
        clock.now + timedelta(hours=73), tenant_ids=[checkout.tenant_id]
    )
    assert report.released == 1
    tenant = await pool.fetchrow("SELECT * FROM control.tenants WHERE id = $1", checkout.tenant_id)
    assert tenant["deleted_at"] is not None
    status = await pool.fetchval(
        "SELECT status FROM control.payments WHERE id = $1", checkout.payment_id
    )
    assert status == "canceled"
    # The token can be bought again.
    assert (await billing.checkout.purchase(order)).tenant_id != checkout.tenant_id


async def botfleet(database_url: str, *args: str) -> Result:
    """The ``botfleet`` CLI as an operator runs it (in a thread: it runs its own event loop)."""
    env = {"BOTFLEET_DATABASE_URL": database_url, "BOTFLEET_MASTER_KEY": generate_master_key()}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_a_subscription_that_breaks_a_step_is_set_aside_and_the_rest_go_on(
    billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order, database_url: str
) -> None:
    good = await billing.checkout.purchase(make_order())
    bad = await billing.checkout.purchase(make_order())
    for checkout in (good, bad):
        await _pay(billing, yookassa_standin, pool, checkout)
    tids = [good.tenant_id, bad.tenant_id]
    end = max([(await _sub(pool, tid))["current_period_end"] for tid in tids])
    # The database refuses every new event of one tenant (as a broken row would): a fault of that
    # subscription alone, not of the database.
    fn = f"refuse_events_{bad.tenant_id}"
    await pool.execute(
        f"CREATE FUNCTION control.{fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.tenant_id = {bad.tenant_id} THEN RAISE EXCEPTION 'poisoned row'; END IF;"
        " RETURN NEW; END $$"
    )
    await pool.execute(
        f"CREATE TRIGGER {fn} BEFORE INSERT ON control.events"
        f" FOR EACH ROW EXECUTE FUNCTION control.{fn}()"
    )
    try:
        report = await billing.lifecycle.run_once(end - timedelta(days=3), tenant_ids=tids)
        assert report.reminded == 2 and report.set_aside == 1
        assert (await _events(pool, good.tenant_id))[-1] == "subscription.reminder"
        assert (await _events(pool, bad.tenant_id))[-1] == "payment.succeeded"
        poisoned = await _sub(pool, bad.tenant_id)
        assert poisoned["lifecycle_failed_at"] is not None
        assert "remind: RaiseError: poisoned row" in poisoned["lifecycle_error"]
        assert poisoned["reminders_sent"] == []  # its share of the step was undone

        # Set aside: later runs leave it alone, even when more steps fall due.
        later = await billing.lifecycle.run_once(end + timedelta(minutes=1), tenant_ids=tids)
        assert later.expired == 1 and later.set_aside == 0
        assert (await _sub(pool, bad.tenant_id))["status"] == "active"
    finally:
        await pool.execute(f"DROP TRIGGER {fn} ON control.events")
        await pool.execute(f"DROP FUNCTION control.{fn}()")

    # The operator finds it, fixes the cause and hands it back: the lifecycle catches up.
    listed = await botfleet(database_url, "billing", "failures", "--json")
    assert listed.exit_code == 0, listed.output
    [entry] = [e for e in json.loads(listed.output) if e["id"] == poisoned["id"]]
    assert entry["slug"] and "poisoned row" in entry["lifecycle_error"]
    retried = await botfleet(database_url, "billing", "retry", str(poisoned["id"]))
    assert retried.exit_code == 0 and "handed back" in retried.output
    again = await botfleet(database_url, "billing", "retry", str(poisoned["id"]))
    assert again.exit_code == 1 and "is not set aside" in again.output
    assert not await subscription_repo.retry_lifecycle(pool, poisoned["id"])
    caught_up = await billing.lifecycle.run_once(end + timedelta(minutes=2), tenant_ids=tids)
    assert caught_up.expired == 1
    assert (await _events(pool, bad.tenant_id))[-1] == "subscription.expired"
