"""The sales bot's per-user rate limit (``sales_rate_limit``), against the Telegram emulator: a burst
from one user gets one polite "slow down" and then silence, other users are served meanwhile, and
after the window the user is answered again."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import pytest

from sandbox.telegram import TelegramSandbox, TelegramUser
from templates import Texts
from tests.support.sales_bot_support import RunningSalesBot

TEXTS = Texts("sales_bot")
WINDOW_S = 2.0
NOTICE = TEXTS("en", "rate_limited")
WELCOME = "botfleet"


@pytest.fixture
def sales_rate_limit() -> str:
    """Three updates per user in a moving two-second window (overrides the conftest default)."""
    return "3/2seconds"


async def _user(sandbox: TelegramSandbox, bot: RunningSalesBot, name: str) -> TelegramUser:
    # A random id: the limiter's Redis keys are per Telegram user, and every emulator numbers its
    # users from the same start, so parallel tests must not share an id.
    return await sandbox.user(
        bot_id=bot.bot_id,
        first_name=name,
        language_code="en",
        id=secrets.randbelow(10**9) + 5 * 10**9,
    )


async def _bot_texts(user: TelegramUser) -> list[str]:
    return [m.get("text") or "" for m in await user.messages() if m["from"] == "bot"]


async def _until_bot_messages(user: TelegramUser, count: int, *, timeout: float = 10.0) -> None:
    """Wait until the bot has sent ``user`` at least ``count`` messages."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        chat = await user.chat()
        if sum(m["from"] == "bot" for m in chat["messages"]) >= count:
            user.mark = chat["version"]
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            sent = [m.get("text") for m in chat["messages"] if m["from"] == "bot"]
            raise AssertionError(f"the bot sent fewer than {count} messages: {sent}")
        with contextlib.suppress(TimeoutError):
            await user.wait_for_change(chat["version"], timeout=remaining)


async def _stays_quiet(user: TelegramUser, seconds: float) -> bool:
    """Whether the chat stays unchanged for ``seconds``."""
    try:
        await user.wait_for_change(timeout=seconds)
    except TimeoutError:
        return True
    return False


def _count(texts: list[str], fragment: str) -> int:
    return sum(fragment in text for text in texts)


async def test_a_burst_gets_one_notice_then_silence_until_the_window_passes(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox
) -> None:
    ann = await _user(telegram_sandbox, sales_bot, "Ann")
    bob = await _user(telegram_sandbox, sales_bot, "Bob")

    # Six messages at once: three are served, the fourth is told to slow down, the rest dropped.
    for _ in range(6):
        await ann.send("/start")
    await _until_bot_messages(ann, 4)
    assert await _stays_quiet(ann, 0.5), await _bot_texts(ann)
    texts = await _bot_texts(ann)
    assert len(texts) == 4, texts
    assert _count(texts, WELCOME) == 3 and _count(texts, NOTICE) == 1, texts
    burst_served = asyncio.get_running_loop().time()

    # Still limited: a button is answered with the notice (a toast, no chat message); another
    # message is dropped without a second notice.
    query_id = await ann.click("🛒 Plans and purchase")
    assert NOTICE in (await ann.callback_answer(query_id))["text"]
    await ann.send("hello?")
    assert await _stays_quiet(ann, 0.3)
    assert _count(await _bot_texts(ann), NOTICE) == 1

    # Another user is not affected.
    assert WELCOME in (await bob.ask("/start"))["text"]
    assert NOTICE not in "".join(await _bot_texts(bob))

    # Once every served update is older than the window, Ann is answered again.
    await asyncio.sleep(max(0.0, burst_served + WINDOW_S + 0.1 - asyncio.get_running_loop().time()))
    answer: dict[str, Any] = await ann.ask("/start")
    assert WELCOME in answer["text"] and NOTICE not in answer["text"]
