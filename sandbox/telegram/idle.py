"""Answers for bots nobody runs: a bot registered with an ``idle_reply`` says so instead of nothing.

In Telegram a bot whose program is not running is silent, which in the sandbox looks broken (a
person writes to ``botfleet up``'s demo bot "Demo 1" and waits). When a user's message to such a bot
is still unfetched ``idle_reply_after`` seconds later (no getUpdates, no webhook delivery took it),
the emulator posts the bot's idle reply in the user's language. Once a program has run the bot
(getUpdates or setWebhook, remembered across restarts), the emulator stays out of its chats for
good: a sold bot that is down for a moment (a redeploy) is silent, as a real bot would be.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sandbox.telegram.formatting import automatic_entities
from sandbox.telegram.models import ChatMessage, Conversation

if TYPE_CHECKING:
    from sandbox.telegram.world import TelegramWorld


def idle_text(texts: dict[str, str], language_code: str | None) -> str:
    """The text for a language (``en-GB`` falls back to ``en``, then to ``""``, then any)."""
    code = language_code or ""
    return (
        texts.get(code)
        or texts.get(code.split("-", 1)[0])
        or texts.get("")
        or next(iter(texts.values()))
    )


class IdleReplies:
    """The timers of one world's pending idle replies, one per user message to an idle bot."""

    def __init__(self, world: TelegramWorld) -> None:
        self.world = world
        self._timers: dict[tuple[int, int], asyncio.TimerHandle] = {}

    def arm(self, conv: Conversation, update_id: int) -> None:
        """Check, a moment from now, whether a bot fetched the update carrying a user's message."""
        if conv.bot.idle_reply is None or conv.bot.has_run:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (a unit test): nobody could run the bot
            return
        self._timers[(conv.bot.id, update_id)] = loop.call_later(
            self.world.config.idle_reply_after, self._check, conv, update_id
        )

    def _check(self, conv: Conversation, update_id: int) -> None:
        world, bot = self.world, conv.bot
        self._timers.pop((bot.id, update_id), None)
        texts = bot.idle_reply
        if (
            texts is None
            or bot.has_run
            or world.bots.get(bot.id) is not bot
            or bot.fetched_up_to >= update_id
        ):
            return
        if world.conversations.get((bot.id, conv.user.id)) is not conv or conv.blocked:
            return
        text = idle_text(texts, conv.user.language_code)
        msg = ChatMessage(
            message_id=conv.new_message_id(),
            from_bot=True,
            date=world.now(),
            text=text,
            entities=automatic_entities(text),
        )
        conv.messages[msg.message_id] = msg
        world.touch(conv)

    def cancel_all(self) -> None:
        """Forget every pending check (the emulator is stopping)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
