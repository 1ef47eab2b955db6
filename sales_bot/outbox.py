"""Delivering owner-facing events (``control.events``) as Telegram messages.

Events are claimed with ``FOR UPDATE SKIP LOCKED`` in a transaction that also marks them delivered,
so two sales bot processes never send the same event; a crash between sending and committing sends it
again (at least once, in practice once). An owner who blocked the bot is given up on; a Telegram
hiccup puts the event back with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)

from fleet.repositories import events as event_repo
from sales_bot.formatting import day
from templates import Texts

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = (
    "payment.succeeded",
    "payment.canceled",
    "payment.refund_needed",
    "subscription.reminder",
    "subscription.expired",
    "subscription.renewal_failed",
    "tenant.suspended",
    "tenant.deletion_warning",
    "tenant.deleted",
    "tenant.live",
    "tenant.failed",
)
_DATES = ("paid_until", "suspend_at", "delete_at")
MAX_ATTEMPTS = 10


class OutboxDelivery:
    """Sends due events to their tenants' owners."""

    def __init__(
        self, *, pool: asyncpg.Pool, bot: Bot, texts: Texts, support: str, batch: int = 50
    ) -> None:
        self._pool = pool
        self._bot = bot
        self._texts = texts
        self._support = support
        self._batch = batch

    def render(self, event: asyncpg.Record) -> str:
        """The message for one event, in the tenant's language, dates in its time zone."""
        payload: dict[str, Any] = dict(event["payload"] or {})
        for key in _DATES:
            if payload.get(key):
                payload[key] = day(payload[key], event["timezone"])
        payload.setdefault("support", self._support)
        key = "event_" + event["kind"].replace(".", "_")
        bot = event["bot_username"] or event["slug"]
        return self._texts(event["locale"], key, bot=bot, p=payload)

    async def deliver_once(self, *, tenant_ids: Sequence[int] | None = None) -> int:
        """Deliver one batch of due events; returns how many were handled."""
        async with self._pool.acquire() as conn, conn.transaction():
            events = await event_repo.claim_undelivered(
                conn, kinds=KINDS, limit=self._batch, tenant_ids=tenant_ids
            )
            for event in events:
                await self._deliver(conn, event)
        return len(events)

    async def _deliver(self, conn: asyncpg.Connection, event: asyncpg.Record) -> None:
        text = self.render(event)
        problems: list[str] = []
        for owner in event["owner_telegram_ids"]:
            try:
                await self._bot.send_message(chat_id=owner, text=text)
            except (TelegramForbiddenError, TelegramBadRequest) as exc:
                problems.append(f"{type(exc).__name__}")  # blocked or no chat: give up on them
            except TelegramRetryAfter as exc:
                await event_repo.postpone(
                    conn, event["id"], error="flood control", delay_seconds=exc.retry_after
                )
                return
            except (TimeoutError, TelegramAPIError, OSError) as exc:
                if event["attempts"] + 1 >= MAX_ATTEMPTS:
                    problems.append(f"gave up: {type(exc).__name__}")
                    break
                await event_repo.postpone(
                    conn,
                    event["id"],
                    error=type(exc).__name__,
                    delay_seconds=min(600.0, 5.0 * 2 ** event["attempts"]),
                )
                return
        await event_repo.mark_delivered(conn, event["id"], error="; ".join(problems) or None)
        log.info(
            "event delivered",
            extra={"event_id": event["id"], "kind": event["kind"], "tenant": event["slug"]},
        )

    async def run(self, *, interval: float, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set: batches back to back while there is work, else wait."""
        while not stop.is_set():
            try:
                handled = await self.deliver_once()
            except (asyncpg.PostgresError, OSError):
                log.exception("event delivery failed; retrying")
                handled = 0
            if handled:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
