"""Helpers for tenant bot tests: act as a customer in the sandbox and read what the bot shows.

A button tap first changes the chat with the callback answer and only then with the edited screen,
so "the bot answered" here means: the bot's messages (text, keyboard, count) changed, then settled.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.telegram import TelegramUser


async def bot_view(user: TelegramUser) -> list[tuple[Any, ...]]:
    return [
        (m["message_id"], m["text"], m["caption"], str(m["inline_keyboard"]), m["edit_date"])
        for m in await user.messages()
        if m["from"] == "bot"
    ]


async def settle(
    user: TelegramUser, before: list[tuple[Any, ...]], *, timeout: float = 5.0
) -> dict[str, Any]:
    """Wait until the bot's messages differ from ``before`` and stay unchanged for a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await bot_view(user) == before:
        if loop.time() > deadline:
            raise TimeoutError("the bot did not answer")
        await asyncio.sleep(0.02)
    while True:
        current = await bot_view(user)
        await asyncio.sleep(0.1)
        if await bot_view(user) == current or loop.time() > deadline:
            break
    return await last_screen(user)


async def last_screen(user: TelegramUser) -> dict[str, Any]:
    """The bot's newest text message: the screen the user looks at (a file the bot sent along,
    such as a booking's calendar file, is a document below it, not a screen)."""
    for message in reversed(await user.messages()):
        if message["from"] == "bot" and message["text"] is not None:
            return message
    raise AssertionError("the chat holds no bot text message")


async def buttons(user: TelegramUser) -> list[str]:
    """Labels of the inline buttons of the bot's newest message."""
    message = await user.last_message()
    assert message is not None
    return [b["text"] for row in message["inline_keyboard"] or [] for b in row]


async def tap(user: TelegramUser, text: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """Tap an inline button and return the bot's newest message once the chat settles."""
    before = await bot_view(user)
    await user.click(text)
    return await settle(user, before, timeout=timeout)


async def say(user: TelegramUser, text: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """Send a message and return the bot's newest message once it answered and settled."""
    before = await bot_view(user)
    await user.send(text)
    return await settle(user, before, timeout=timeout)


async def book_first_slot(
    user: TelegramUser, *, name: str = "Anna", phone: str = "+79161234567", time: str = "10:00"
) -> dict[str, Any]:
    """The whole customer flow on Tuesday 8 January 2030; returns the final message."""
    await say(user, "/book")
    await tap(user, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(user, "8")
    await tap(user, time)
    await say(user, name)
    await say(user, phone)
    return await tap(user, "✅ Confirm")


async def wait_for_text(user: TelegramUser, needle: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The newest bot message containing ``needle``, waiting for it to arrive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for message in reversed(await user.messages()):
            if message["from"] == "bot" and needle in (message["text"] or message["caption"] or ""):
                return message
        if loop.time() > deadline:
            raise TimeoutError(f"no bot message with {needle!r}")
        await asyncio.sleep(0.05)
