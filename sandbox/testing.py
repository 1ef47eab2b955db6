"""pytest fixtures and helpers for tests that need Telegram or YooKassa.

Use from any conftest::

    from sandbox.testing import (  # noqa: F401  (fixtures are found by name)
        telegram_emulator, telegram_sandbox, yookassa_standin, yookassa_sandbox,
    )

or, in the root conftest only, ``pytest_plugins = ["sandbox.testing"]``.

Fixtures (function-scoped, each on its own free port, so tests run in parallel):

- ``telegram_emulator``: a running :class:`TelegramEmulator` with flood limits off and fast webhook
  retries (turn limits on with ``telegram_emulator.set_rate_limits(RateLimits())``);
- ``telegram_sandbox``: a :class:`TelegramSandbox` control client bound to it;
- ``yookassa_standin``: a running :class:`YooKassaStandIn` with fast notification retries and no
  webhook URL (set one with ``yookassa_standin.set_webhook(url, source_address=...)``);
- ``yookassa_sandbox``: a :class:`YooKassaSandbox` control client bound to it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession

from sandbox.telegram import EmulatorConfig, RateLimits, TelegramEmulator, TelegramSandbox
from sandbox.yookassa import NotificationSenderConfig, YooKassaSandbox, YooKassaStandIn

_TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"


def new_bot_token(bot_id: int | None = None) -> str:
    """A random, well-formed bot token (``<id>:<35 chars>``) for one test."""
    number = bot_id if bot_id is not None else secrets.randbelow(9_000_000_000) + 1_000_000_000
    secret = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(35))
    return f"{number}:{secret}"


def bot_id_of(token: str) -> int:
    """The bot id a token starts with."""
    return int(token.split(":", 1)[0])


def make_bot(emulator: TelegramEmulator, token: str, **kwargs: Any) -> Bot:
    """An aiogram :class:`Bot` whose session talks to ``emulator``; close its session after use."""
    return Bot(token, session=AiohttpSession(api=emulator.api_server), **kwargs)


def fast_emulator_config() -> EmulatorConfig:
    """Emulator settings for tests: no flood limits, webhook retries within milliseconds."""
    return EmulatorConfig(
        rate_limits=RateLimits.disabled(),
        webhook_retry_initial=0.02,
        webhook_retry_max=0.5,
        webhook_timeout=5.0,
    )


def fast_notifier_config() -> NotificationSenderConfig:
    """Notification settings for tests: retries within milliseconds, five attempts."""
    return NotificationSenderConfig(retry_initial=0.02, retry_max=0.5, max_attempts=5, timeout=5.0)


@pytest_asyncio.fixture
async def telegram_emulator() -> AsyncIterator[TelegramEmulator]:
    """A Telegram Bot API emulator on a free port of 127.0.0.1."""
    async with TelegramEmulator.start(
        host="127.0.0.1", port=0, config=fast_emulator_config()
    ) as tg:
        yield tg


@pytest_asyncio.fixture
async def telegram_sandbox(telegram_emulator: TelegramEmulator) -> AsyncIterator[TelegramSandbox]:
    """The control-API client of ``telegram_emulator``."""
    async with TelegramSandbox(telegram_emulator.base_url) as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def yookassa_standin() -> AsyncIterator[YooKassaStandIn]:
    """A YooKassa stand-in on a free port of 127.0.0.1 (default test credentials)."""
    async with YooKassaStandIn.start(
        host="127.0.0.1", port=0, notifier=fast_notifier_config()
    ) as standin:
        yield standin


@pytest_asyncio.fixture
async def yookassa_sandbox(yookassa_standin: YooKassaStandIn) -> AsyncIterator[YooKassaSandbox]:
    """The control-API client of ``yookassa_standin``."""
    async with YooKassaSandbox(yookassa_standin.base_url) as sandbox:
        yield sandbox
