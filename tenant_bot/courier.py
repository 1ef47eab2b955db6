"""Sends one message and says what became of it, never raising for the message's own faults.

The :class:`Courier` is the one place where a message is rendered and handed to Telegram for the
bot's unsolicited messages. A render or send that fails is turned into a
:class:`~tenant_bot.delivery.Delivery` (``retry`` or ``failed``) instead of an exception, so one bad
item never aborts the loop or the handler that sends it. Fan-outs (a card to several owners) remember,
per recipient, who was settled (sent, or refused for good) under a Redis key, so a retry after a
passing fault reaches only those still waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tenant_bot.delivery import Delivery, DeliveryTally, Outcome

log = logging.getLogger(__name__)

SETTLED_TTL_SECONDS = 14 * 24 * 3600

Message = tuple[str, InlineKeyboardMarkup | None]


class Courier:
    """Renders and sends single messages for the :class:`~tenant_bot.notifications.Notifier`."""

    def __init__(
        self, bot: Bot, *, redis: Redis, prefix: str, tally: DeliveryTally | None = None
    ) -> None:
        self.bot = bot
        self.redis = redis
        self.prefix = prefix
        self.tally = tally if tally is not None else DeliveryTally()

    async def deliver(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Delivery:
        """Send one message. Short flood waits are already waited out by the session's
        :class:`~kit.flood.RetryAfterMiddleware`; a long one comes back as ``retry``."""
        try:
            await self.bot.send_message(chat_id, text, reply_markup=markup)
        except Exception as exc:
            return Delivery.of(exc)
        return Delivery.sent()

    async def attempt(self, chat_id: int, render: Callable[[], Message]) -> Delivery:
        """Render (a template that cannot render is the item's own fault: ``failed``), then send."""
        try:
            text, markup = render()
        except Exception as exc:
            return Delivery(Outcome.FAILED, Delivery.of(exc, context="render").error)
        return await self.deliver(chat_id, text, markup)

    async def one_shot(
        self, kind: str, item_id: int, chat_id: int, render: Callable[[], Message]
    ) -> Delivery:
        """Send a message nobody will retry (a notice sent while handling an update): a failure of
        either sort is counted and logged here, once."""
        result = await self.attempt(chat_id, render)
        if result.outcome is Outcome.FAILED:
            self.tally.set_aside(kind, item_id, result.error)
        elif result.outcome is Outcome.RETRY:
            self.tally.deferred(kind, item_id, result.error)
        return result

    # -- per-recipient marks of a fan-out --

    def _mark_key(self, item: str, chat_id: int) -> str:
        return f"{self.prefix}settled:{item}:{chat_id}"

    async def settled(self, item: str, chat_ids: list[int]) -> dict[int, str]:
        """Recipients of ``item`` already settled, with ``sent`` / ``failed`` (Redis down: none —
        better a message twice than never)."""
        if not chat_ids:
            return {}
        try:
            values = await self.redis.mget([self._mark_key(item, c) for c in chat_ids])
        except RedisError as exc:
            log.warning("cannot read delivery marks", extra={"error": type(exc).__name__})
            return {}
        return {
            chat_id: value.decode() if isinstance(value, bytes) else str(value)
            for chat_id, value in zip(chat_ids, values, strict=True)
            if value is not None
        }

    async def settle(self, item: str, chat_id: int, outcome: Outcome) -> None:
        """Remember that ``chat_id`` is done with ``item`` (errors only logged)."""
        try:
            await self.redis.set(
                self._mark_key(item, chat_id), outcome.value, ex=SETTLED_TTL_SECONDS
            )
        except RedisError as exc:
            log.warning("cannot write a delivery mark", extra={"error": type(exc).__name__})
