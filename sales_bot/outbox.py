"""Delivering owner-facing events (``control.events``) as Telegram messages.

Each pass leases a batch of due events (see :func:`fleet.repositories.events.claim_due`: two sales
bot processes never take the same event) and delivers them one by one, each event on its own:

- the payload is parsed with its model (``schemas/events.py``) and rendered for every owner in the
  owner's own language (chosen in the sales bot, else the tenant's); an event that cannot be parsed
  or rendered is **set aside** (marked failed with its error, logged once, counted) — no retry can fix
  it, and it must not hold up the events behind it;
- every owner sent to is recorded right after the send, in its own statement, and the event is
  marked delivered after the last one. A crash between a send and its record repeats at most that
  one message (once the lease runs out); nothing already recorded is sent again;
- an owner who blocked the bot (or never opened it) is given up on; flood control postpones the event
  by Telegram's ``retry_after``; other send errors retry with a backoff and, after ``MAX_ATTEMPTS``,
  set the event aside.

PostgreSQL errors end the pass (the run loop waits and tries again); leased events come back when
their lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)

from fleet.repositories import events as event_repo
from fleet.repositories import owners as owner_repo
from kit.formats import money
from sales_bot import keyboards
from sales_bot.formatting import day
from schemas.events import OWNER_EVENT_KINDS, Event, parse_event
from templates import Texts

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = OWNER_EVENT_KINDS
_DATES = ("paid_until", "suspend_at", "delete_at", "charge_at")
MAX_ATTEMPTS = 10
LEASE_SECONDS = 120.0


class OutboxDelivery:
    """Sends due events to their tenants' owners. ``counts`` keeps what happened (delivered,
    failed, postponed, recipients_given_up) for the process's metrics."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        bot: Bot,
        texts: Texts,
        support: str,
        batch: int = 50,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._pool = pool
        self._bot = bot
        self._texts = texts
        self._support = support
        self._batch = batch
        self._lease = lease_seconds
        self.counts: Counter[str] = Counter()

    def render(self, event: Event, *, locale: str, bot: str, timezone: str | None) -> str:
        """The message for one event in ``locale``, dates in the business's time zone."""
        fields: dict[str, Any] = dict(event)
        for key in _DATES:
            if fields.get(key) is not None:
                fields[key] = day(fields[key], timezone)
        for key in ("amount", "refunded_total", "paid"):
            if fields.get(key) is not None:
                fields[key] = money(fields[key], fields.get("currency") or "RUB")
        fields["support"] = self._support
        return self._texts(locale, event.template(), bot=bot, p=fields)

    async def deliver_once(self, *, tenant_ids: Sequence[int] | None = None) -> int:
        """Deliver one batch of due events; returns how many were handled."""
        events = await event_repo.claim_due(
            self._pool,
            kinds=KINDS,
            limit=self._batch,
            lease_seconds=self._lease,
            tenant_ids=tenant_ids,
        )
        if not events:
            return 0
        owners = {owner for event in events for owner in event["owner_telegram_ids"]}
        locales = await owner_repo.locales_of(self._pool, owners)
        for event in events:
            await self._deliver(event, locales)
        return len(events)

    async def _deliver(self, event: asyncpg.Record, locales: dict[int, str]) -> None:
        recipients = [o for o in event["owner_telegram_ids"] if o not in set(event["sent_to"])]
        try:
            model = parse_event(event["kind"], event["payload"])
            bot = event["bot_username"] or event["slug"]
            texts = {
                owner: self.render(
                    model,
                    locale=locales.get(owner, event["locale"]),
                    bot=bot,
                    timezone=event["timezone"],
                )
                for owner in recipients
            }
            markups = {
                owner: keyboards.event_buttons(
                    self._texts,
                    locales.get(owner, event["locale"]),
                    kind=event["kind"],
                    tenant_id=event["tenant_id"],
                    payload=event["payload"] or {},
                )
                for owner in recipients
            }
        except Exception as exc:  # no retry can render it: set it aside, go on with the next
            await self._set_aside(event, f"cannot render: {type(exc).__name__}: {exc}")
            return
        given_up: list[str] = []
        for owner in recipients:
            try:
                await self._bot.send_message(
                    chat_id=owner, text=texts[owner], reply_markup=markups[owner]
                )
            except (TelegramForbiddenError, TelegramBadRequest) as exc:
                # Blocked the bot, or never opened it: no retry reaches them.
                given_up.append(type(exc).__name__)
                self.counts["recipients_given_up"] += 1
            except TelegramRetryAfter as exc:
                await event_repo.postpone(
                    self._pool, event["id"], error="flood control", delay_seconds=exc.retry_after
                )
                self.counts["postponed"] += 1
                return
            except Exception as exc:  # timeouts, 5xx, network: may pass
                await self._retry_later(event, exc)
                return
            await event_repo.record_sent(self._pool, event["id"], owner)
        await event_repo.mark_delivered(self._pool, event["id"], error="; ".join(given_up) or None)
        self.counts["delivered"] += 1
        log.info(
            "event delivered",
            extra={"event_id": event["id"], "kind": event["kind"], "tenant": event["slug"]},
        )

    async def _retry_later(self, event: asyncpg.Record, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if event["attempts"] + 1 >= MAX_ATTEMPTS:
            await self._set_aside(event, f"gave up after {MAX_ATTEMPTS} attempts: {error}")
            return
        delay = min(600.0, 5.0 * 2 ** event["attempts"])
        await event_repo.postpone(self._pool, event["id"], error=error, delay_seconds=delay)
        self.counts["postponed"] += 1
        log.warning(
            "event delivery failed; retrying",
            extra={
                "event_id": event["id"],
                "kind": event["kind"],
                "tenant": event["slug"],
                "error": type(exc).__name__,
                "retry_in_s": delay,
            },
        )

    async def _set_aside(self, event: asyncpg.Record, error: str) -> None:
        await event_repo.mark_failed(self._pool, event["id"], error=error)
        self.counts["failed"] += 1
        log.error(
            "event set aside as failed",
            extra={
                "event_id": event["id"],
                "kind": event["kind"],
                "tenant": event["slug"],
                "error": error[:500],
            },
        )

    async def run(
        self,
        *,
        interval: float,
        stop: asyncio.Event,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Deliver until ``stop`` is set: batches back to back while there is work, else wait.
        ``on_tick`` is called after every pass that reached the database (a supervisor's beat).
        While PostgreSQL is unreachable, passes are retried with a growing pause."""
        failures = 0
        while not stop.is_set():
            try:
                handled = await self.deliver_once()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                failures += 1
                pause = min(30.0, interval * 2**failures)
                log.warning(
                    "event delivery paused: database unavailable",
                    extra={"error": type(exc).__name__, "retry_in_s": pause},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                continue
            failures = 0
            if on_tick is not None:
                on_tick()
            if handled:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
