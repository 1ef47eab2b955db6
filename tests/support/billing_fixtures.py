"""Fixtures shared by the billing and sales bot tests (imported by their conftest files): a plan, a
clock, the billing services wired to the YooKassa stand-in, and the control plane's webhook served
over HTTP for the stand-in to notify."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from tenacity import wait_none

from control_plane import problems
from control_plane.routes.billing import router
from fleet.billing.accounts import consent_terms
from fleet.billing.checkout import Order
from fleet.billing.config import BillingConfig
from fleet.billing.notifications import SenderPolicy
from fleet.billing.wiring import Billing, build_billing
from fleet.billing.yookassa import YooKassaClient
from fleet.bot_tokens import BotTokenChecker
from fleet.repositories.plans import PlanRepository
from fleet.secrets import SecretBox, generate_master_key
from sandbox.testing import (  # noqa: F401  (fixtures are found by name)
    new_bot_token,
    yookassa_sandbox,
    yookassa_standin,
)
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn

YOOKASSA_IP = "127.0.0.77"  # the stand-in notifies from this loopback alias


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def secret_box() -> SecretBox:
    return SecretBox(generate_master_key())


@pytest_asyncio.fixture
async def plan(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Record]:
    """A plan of this test alone: 990.00 RUB for 30 days."""
    code = "p" + secrets.token_hex(5)
    row = await PlanRepository(pool).insert(
        code=code, name=f"Basic {code}", price=Decimal("990.00"), period_days=30
    )
    yield row
    await _cleanup_plan(pool, code)


async def _cleanup_plan(pool: asyncpg.Pool, code: str) -> None:
    """Remove what a test created under its plan (tenants first: they cascade)."""
    async with pool.acquire() as conn, conn.transaction():
        tenant_ids = await conn.fetch(
            "SELECT DISTINCT tenant_id FROM control.payments WHERE plan_code = $1"
            " UNION SELECT id FROM control.tenants WHERE plan_code = $1",
            code,
        )
        ids = [r[0] for r in tenant_ids if r[0] is not None]
        await conn.execute("DELETE FROM control.payments WHERE plan_code = $1", code)
        await conn.execute("DELETE FROM control.tenants WHERE id = ANY($1::bigint[])", ids)
        await conn.execute("DELETE FROM control.plans WHERE code = $1", code)


@pytest.fixture
def billing_config() -> BillingConfig:
    return BillingConfig(
        return_url="https://t.me/botfleet_sales_bot",
        grace=timedelta(days=3),
        retention=timedelta(days=30),
        deletion_warning=timedelta(days=7),
        reminder_days=(3, 1),
        autorenew_lead=timedelta(hours=24),
    )


@pytest_asyncio.fixture
async def provider(yookassa_standin: YooKassaStandIn) -> AsyncIterator[YooKassaClient]:  # noqa: F811
    client = YooKassaClient(
        shop_id=DEFAULT_SHOP_ID,
        secret_key=DEFAULT_SECRET_KEY,
        api_url=yookassa_standin.api_url,
        timeout=5.0,
        retry_wait=wait_none(),
    )
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def billing(
    pool: asyncpg.Pool,
    secret_box: SecretBox,
    provider: YooKassaClient,
    billing_config: BillingConfig,
    clock: FakeClock,
) -> AsyncIterator[Billing]:
    tokens = BotTokenChecker(api_base="http://127.0.0.1:9")  # unused unless a test replaces it
    yield build_billing(
        pool=pool,
        secrets=secret_box,
        provider=provider,
        config=billing_config,
        senders=SenderPolicy(allowed=[f"{YOOKASSA_IP}/32"]),
        tokens=tokens,
        clock=clock,
    )
    await tokens.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebhookServer:
    url: str
    app: FastAPI


@pytest_asyncio.fixture
async def webhook(
    billing: Billing,
    yookassa_standin: YooKassaStandIn,  # noqa: F811
) -> AsyncIterator[WebhookServer]:
    """The billing router served by uvicorn; the stand-in notifies it from ``YOOKASSA_IP``."""
    app = FastAPI()
    problems.install(app)
    app.include_router(router)
    app.state.billing = billing
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,  # the sender policy alone decides what X-Forwarded-For means
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}/webhooks/yookassa"
    yookassa_standin.set_webhook(url, source_address=YOOKASSA_IP)
    try:
        yield WebhookServer(url=url, app=app)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def make_order(plan: asyncpg.Record) -> Iterator[type]:
    """``make_order(owner=...)``: an order of a fresh bot under this test's plan."""

    def build(*, owner: int | None = None, **overrides: object) -> Order:
        token = new_bot_token()
        bot_id = int(token.split(":")[0])
        values: dict[str, object] = {
            "owner_telegram_id": owner or secrets.randbelow(10**9) + 10**6,
            "plan_code": plan["code"],
            "display_name": "Ivan's Barbershop",
            "bot_token": token,
            "bot_id": bot_id,
            "bot_username": f"shop{bot_id}_bot",
            "timezone": "Europe/Moscow",
            "locale": "ru",
        }
        values.update(overrides)
        if (
            values.get("save_payment_method")
            and "autopay_consent" not in overrides
            and values["plan_code"] == plan["code"]
        ):
            # The buyer agreed to automatic charges of this plan (as the sales bot asks them to).
            values["autopay_consent"] = consent_terms(
                plan_code=plan["code"],
                amount=plan["price"],
                currency=plan["currency"],
                period_days=plan["period_days"],
                now=datetime.now(UTC),
            )
        return Order(**values)  # type: ignore[arg-type]

    yield build  # type: ignore[misc]
