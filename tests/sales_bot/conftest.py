"""Fixtures of the sales bot tests: the billing fixtures, the Telegram emulator, and the sales bot
polling it (its outbox is driven by the tests, scoped to their own tenants)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from fleet.billing.wiring import Billing
from fleet.bot_tokens import BotTokenChecker
from fleet.secrets import SecretBox
from sales_bot.app import build_dispatcher, make_bot
from sales_bot.outbox import OutboxDelivery
from sales_bot.owner_locales import OwnerLocales
from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.testing import (  # noqa: F401
    bot_id_of,
    new_bot_token,
    telegram_emulator,
    telegram_sandbox,
)
from templates import Texts
from tests.support.billing_fixtures import (  # noqa: F401  (fixtures are found by name)
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
from tests.support.sales_bot_support import RunningSalesBot

SUPPORT = "@botfleet_support"


@pytest.fixture
def sales_rate_limit() -> str:
    """The per-user limit of the ``sales_bot`` fixture: none to speak of (a module overrides it)."""
    return "1000/second"


@pytest_asyncio.fixture
async def sales_bot(
    billing: Billing,  # noqa: F811
    pool: asyncpg.Pool,
    secret_box: SecretBox,  # noqa: F811
    redis: Redis,
    redis_url: str,
    telegram_emulator: TelegramEmulator,  # noqa: F811
    telegram_sandbox: TelegramSandbox,  # noqa: F811
    sales_rate_limit: str,
) -> AsyncIterator[RunningSalesBot]:
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username=f"sales{bot_id_of(token)}_bot")
    tokens = BotTokenChecker(api_base=telegram_emulator.base_url)
    wired = dataclasses.replace(billing, tokens=tokens)
    texts = Texts("sales_bot")
    dispatcher = build_dispatcher(
        billing=wired,
        box=secret_box,
        redis=redis,
        redis_url=redis_url,
        texts=texts,
        support=SUPPORT,
        rate_limit=sales_rate_limit,
        owner_locales=OwnerLocales(pool),
    )
    bot = make_bot(token, api_base=telegram_emulator.base_url)
    outbox = OutboxDelivery(pool=pool, bot=bot, texts=texts, support=SUPPORT)
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=5)
    )
    account = telegram_emulator.world.bots[bot_id_of(token)]
    while account.poll_generation == 0 and not task.done():
        await account.update_signal.wait_past(account.update_signal.version, 0.05)
    try:
        yield RunningSalesBot(bot=bot, bot_id=bot_id_of(token), billing=wired, outbox=outbox)
    finally:
        if not task.done():
            await dispatcher.stop_polling()
        await task
        await bot.session.close()
        await tokens.aclose()
