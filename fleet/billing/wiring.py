"""Building the billing services from settings: one place, used by the control plane's lifespan,
the sales bot and the CLI.

::

    async with open_billing(settings=settings, pool=pool, secrets=box) as billing:
        app.state.billing = billing      # control plane: POST /webhooks/yookassa reads it
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from fleet.billing.accounts import OwnerAccounts
from fleet.billing.checkout import CheckoutService
from fleet.billing.config import BillingConfig, Clock, utc_now
from fleet.billing.notifications import SenderPolicy
from fleet.billing.payments import PaymentService
from fleet.billing.plan_changes import PlanChangeService
from fleet.billing.receipts import ReceiptContacts
from fleet.billing.refunds import RefundService
from fleet.billing.subscriptions import SubscriptionLifecycle
from fleet.billing.yookassa import YooKassaClient
from fleet.bot_tokens import BotTokenChecker
from fleet.secrets import SecretBox
from fleet.settings import Settings


@dataclass(frozen=True)
class Billing:
    """Every billing service, built around one YooKassa client."""

    config: BillingConfig
    provider: YooKassaClient
    senders: SenderPolicy
    payments: PaymentService
    checkout: CheckoutService
    lifecycle: SubscriptionLifecycle
    accounts: OwnerAccounts
    tokens: BotTokenChecker
    plan_changes: PlanChangeService
    refunds: RefundService
    contacts: ReceiptContacts


def build_billing(
    *,
    pool: asyncpg.Pool,
    secrets: SecretBox,
    provider: YooKassaClient,
    config: BillingConfig,
    senders: SenderPolicy,
    tokens: BotTokenChecker,
    clock: Clock = utc_now,
) -> Billing:
    """Wire the services from their parts (tests pass their own clock, provider and verifier)."""
    payments = PaymentService(
        pool=pool, provider=provider, secrets=secrets, clock=clock, grace=config.grace
    )
    checkout = CheckoutService(
        pool=pool,
        provider=provider,
        payments=payments,
        secrets=secrets,
        config=config,
        clock=clock,
    )
    return Billing(
        config=config,
        provider=provider,
        senders=senders,
        payments=payments,
        checkout=checkout,
        lifecycle=SubscriptionLifecycle(pool=pool, checkout=checkout, config=config, clock=clock),
        accounts=OwnerAccounts(pool=pool, secrets=secrets, clock=clock),
        tokens=tokens,
        plan_changes=PlanChangeService(pool=pool, checkout=checkout, config=config, clock=clock),
        refunds=RefundService(pool=pool, provider=provider, config=config, clock=clock),
        contacts=ReceiptContacts(pool=pool),
    )


@asynccontextmanager
async def open_billing(
    *, settings: Settings, pool: asyncpg.Pool, secrets: SecretBox, clock: Clock = utc_now
) -> AsyncIterator[Billing]:
    """Billing services configured by ``settings``; HTTP clients closed on exit."""
    provider = YooKassaClient(
        shop_id=settings.require("yookassa_shop_id"),
        secret_key=settings.require("yookassa_secret_key"),
        api_url=settings.yookassa_api_url,
        timeout=settings.yookassa_timeout_s,
        max_attempts=settings.yookassa_max_attempts,
    )
    tokens = BotTokenChecker(api_base=settings.telegram_api_base)
    try:
        yield build_billing(
            pool=pool,
            secrets=secrets,
            provider=provider,
            config=BillingConfig.from_settings(settings),
            senders=SenderPolicy(
                allowed=settings.yookassa_allowed_networks,
                trusted_proxies=settings.yookassa_trusted_proxies,
            ),
            tokens=tokens,
            clock=clock,
        )
    finally:
        await tokens.aclose()
        await provider.aclose()
