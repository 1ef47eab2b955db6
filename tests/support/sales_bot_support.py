"""What the sales bot tests share besides fixtures (kept out of conftest so tests can import it)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiogram import Bot

from fleet.billing.wiring import Billing
from sales_bot.outbox import OutboxDelivery


@dataclass
class RunningSalesBot:
    """The sales bot under test: its aiogram bot, id, billing services and outbox."""

    bot: Bot
    bot_id: int
    billing: Billing
    outbox: OutboxDelivery


def url_buttons(message: dict[str, Any]) -> list[str]:
    """The URLs of a message's inline buttons."""
    markup = message.get("reply_markup") or {}
    return [b["url"] for row in markup.get("inline_keyboard", []) for b in row if b.get("url")]


def buttons(message: dict[str, Any]) -> list[str]:
    """The labels of a message's inline buttons."""
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def reply(user: Any, fragment: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """The bot's newest message once it contains ``fragment`` (answers may come after a callback
    answer or a slow payment call, so one settle window is not enough)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        chat = await user.chat()
        from_bot = [m for m in chat["messages"] if m["from"] == "bot"]
        message = from_bot[-1] if from_bot else None
        if message is not None and fragment in (message.get("text") or ""):
            user.mark = chat["version"]
            return message  # type: ignore[no-any-return]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no bot message with {fragment!r}; last: {message}")
        with contextlib.suppress(TimeoutError):
            await user.wait_for_change(chat["version"], timeout=remaining)
