"""Fixtures of the sandbox tests: the shared sandbox fixtures plus a running aiogram bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiogram import Bot, Dispatcher

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.testing import (  # noqa: F401  (fixtures are found by name)
    bot_id_of,
    make_bot,
    new_bot_token,
    telegram_emulator,
    telegram_sandbox,
    yookassa_sandbox,
    yookassa_standin,
)
from tests.support.sandbox_demo_bot import build_dispatcher
from tests.support.sandbox_web import browser  # noqa: F401  (the fixture, found by name)

PollingFactory = Callable[[], AbstractAsyncContextManager[tuple[Bot, int]]]


@pytest.fixture
def polling_bot(request: pytest.FixtureRequest) -> PollingFactory:
    """Start the demo bot in polling mode: ``async with polling_bot() as (bot, bot_id)``."""
    emulator: TelegramEmulator = request.getfixturevalue("telegram_emulator")
    control: TelegramSandbox = request.getfixturevalue("telegram_sandbox")

    @asynccontextmanager
    async def run(dispatcher: Dispatcher | None = None) -> AsyncIterator[tuple[Bot, int]]:
        token = new_bot_token()
        bot_id = bot_id_of(token)
        await control.register_bot(token, username=f"demo{bot_id}_bot")
        bot = make_bot(emulator, token)
        dp = dispatcher or build_dispatcher()
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
        account = emulator.world.bots[bot_id]
        while account.poll_generation == 0 and not task.done():
            await account.update_signal.wait_past(account.update_signal.version, 0.05)
        try:
            yield bot, bot_id
        finally:
            if not task.done():
                await dp.stop_polling()
            await task
            await bot.session.close()

    return run
