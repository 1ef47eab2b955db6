"""``botfleet payments refund`` (issue 18): the real command, in its own process, refunding through
the YooKassa stand-in over HTTP; running it again never refunds twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from fleet.billing.config import BillingConfig
from fleet.billing.wiring import Billing
from fleet.secrets import generate_master_key
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn
from tests.support.receipt_support import paid_purchase, receipts_config, strict_standin


@pytest_asyncio.fixture
async def yookassa_standin() -> AsyncIterator[YooKassaStandIn]:
    async for standin in strict_standin():
        yield standin


@pytest.fixture
def billing_config() -> BillingConfig:
    return receipts_config()


@pytest.fixture
def botfleet(database_url: str, yookassa_standin: YooKassaStandIn):
    env = {
        **os.environ,
        "BOTFLEET_DATABASE_URL": database_url,
        "BOTFLEET_MASTER_KEY": "",
        "BOTFLEET_YOOKASSA_SHOP_ID": DEFAULT_SHOP_ID,
        "BOTFLEET_YOOKASSA_SECRET_KEY": DEFAULT_SECRET_KEY,
        "BOTFLEET_YOOKASSA_API_URL": yookassa_standin.api_url,
        "BOTFLEET_YOOKASSA_RETURN_URL": "https://t.me/botfleet_sales_bot",
        "BOTFLEET_YOOKASSA_RECEIPTS": "true",
        "BOTFLEET_YOOKASSA_VAT_CODE": "11",
        "BOTFLEET_YOOKASSA_TAX_SYSTEM_CODE": "1",
    }

    async def run(*args: str, master_key: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli.main",
            *args,
            env={**env, "BOTFLEET_MASTER_KEY": master_key},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    return run


@pytest.mark.slow  # CLI processes against the stand-in: ~11 s
async def test_refund_command(
    botfleet, billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    master = generate_master_key()  # refunds decrypt nothing: any valid key will do
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    pid = str(payment["id"])
    args = ("payments", "refund", pid, "--amount", "100", "--reason", "outage", "--json")
    code, out, err = await botfleet(*args, master_key=master)
    assert code == 0, err
    first = json.loads(out)
    assert first["status"] == "succeeded" and first["amount"] == "100.00 RUB"
    assert first["effect"] == "none" and first["replayed"] is False

    # The operator is not sure it worked and runs it again: nothing new is refunded.
    code, out, err = await botfleet(*args, master_key=master)
    assert code == 0, err
    again = json.loads(out)
    assert again["refund_id"] == first["refund_id"] and again["replayed"] is True
    code, out, _ = await botfleet(*args[:-1], master_key=master)
    assert code == 0 and "already made with key" in out
    assert len(yookassa_standin.ledger.refunds) == 1

    code, _, err = await botfleet(
        "payments", "refund", pid, "--amount", "890.01", master_key=master
    )
    assert code == 2 and "more than is left to refund: 890.00 RUB" in err
    code, _, err = await botfleet("payments", "refund", pid, "--amount", "1.234", master_key=master)
    assert code == 2 and "2 decimals" in err

    # The rest, named by YooKassa's payment id: a full refund ends the subscription.
    code, out, err = await botfleet(
        "payments", "refund", payment["provider_payment_id"], "--json", master_key=master
    )
    assert code == 0, err
    rest = json.loads(out)
    assert rest["amount"] == "890.00 RUB" and rest["effect"] == "subscription_ended"
    code, _, err = await botfleet("payments", "refund", pid, "--key", "new", master_key=master)
    assert code == 1 and "already refunded in full" in err
    refunded = yookassa_standin.ledger.payments[payment["provider_payment_id"]].refunded_amount
    assert refunded == Decimal("990.00")
    actors = await pool.fetch(
        "SELECT actor FROM control.audit_log WHERE action = 'refund.requested' AND target = $1",
        pid,
    )
    assert len(actors) == 2 and all(a["actor"].startswith("cli:") for a in actors)


@pytest.mark.slow  # CLI processes against the stand-in: ~6 s
async def test_a_refund_yookassa_refused_is_not_replayed_as_done(
    botfleet, billing: Billing, yookassa_standin: YooKassaStandIn, pool, make_order
) -> None:
    master = generate_master_key()
    _, payment = await paid_purchase(
        billing, yookassa_standin, pool, make_order(customer_email="ivan@example.com")
    )
    # Part of it was refunded in YooKassa's dashboard meanwhile: YooKassa refuses our full refund.
    remote = yookassa_standin.ledger.payments[payment["provider_payment_id"]]
    remote.refunded_amount = Decimal("100")
    code, _, err = await botfleet("payments", "refund", str(payment["id"]), master_key=master)
    assert code == 1 and "YooKassa refused the request: 400 invalid_request" in err
    assert "parameter amount.value" in err
    code, _, err = await botfleet("payments", "refund", str(payment["id"]), master_key=master)
    assert code == 1 and "was refused by YooKassa" in err and "new --key" in err
    code, out, err = await botfleet(
        "payments", "refund", str(payment["id"]), "--amount", "890", "--json", master_key=master
    )
    assert code == 0, err
    assert json.loads(out)["status"] == "succeeded"
