"""A per-user rate limit in Redis: a fixed window counted with INCR.

Over the limit, the user is told once per window to slow down and every further update of that window
is dropped without a word (so a flood never turns into a flood of replies). The counter lives in Redis,
so it holds across restarts and is cheap: one round trip per update, which also fetches the user's
chosen locale for :class:`~tenant_bot.middlewares.locale.LocaleMiddleware` (``data["chosen_locale"]``).
Owners and staff work quickly in /admin (a dozen taps to set a week's hours), so they get their own,
higher ``team_limit`` in the same window: the owners are known from the runtime, staff members are
looked up (``is_staff``) only once someone passes the customers' limit, so ordinary updates cost no
more than before. The team limit still stops a runaway client.
Hand-written rather than ``limits`` because the "told once" rule needs the exact count, which INCR
returns for free, and ``limits`` cannot share the round trip.

The window is opened with ``SET key 0 EX window NX`` and counted with ``INCR`` inside one MULTI/EXEC,
so a counter never outlives its window and the commands exist on Redis 6.2 (the embedded server of
``botfleet up``) as well as 7 (``EXPIRE ... NX`` is 7.0+). A counter left without a TTL by an older
version is given one on sight.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tenant_bot.booking.errors import BookingError
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.texts import BotTexts, pick_locale

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
IsStaff = Callable[[int], Awaitable[bool]]


class ThrottleMiddleware(BaseMiddleware):
    """Outer update middleware: at most ``limit`` updates per ``window`` seconds per user
    (``team_limit`` for ``owner_ids`` and users ``is_staff`` says are staff)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        texts: BotTexts,
        limit: int = 12,
        window: int = 10,
        locales: LocaleStore | None = None,
        team_limit: int | None = None,
        owner_ids: frozenset[int] = frozenset(),
        is_staff: IsStaff | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.texts = texts
        self.limit = limit
        self.window = window
        self.locales = locales
        self.team_limit = max(team_limit or limit, limit)
        self.owner_ids = owner_ids
        self.is_staff = is_staff

    async def _count(self, user_id: int, data: dict[str, Any]) -> int:
        key = f"{self.prefix}rl:{user_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=self.window, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            if self.locales is not None:
                pipe.hget(self.locales.key, str(user_id))
            results = await pipe.execute()
        if self.locales is not None:
            chosen = results[3]
            data["chosen_locale"] = chosen.decode() if isinstance(chosen, bytes) else chosen
        count = int(results[1])
        if int(results[2]) == -1:  # a counter without TTL (written by an older version): restart it
            await self.redis.set(key, 1, ex=self.window)
            count = 1
        return count

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or _payment(event):  # money is never dropped (pre-checkout has 10 s)
            return await handler(event, data)
        try:
            count = await self._count(user.id, data)
        except RedisError as exc:
            # Throttling is a protection, not a dependency: without Redis the bot keeps serving.
            log.warning("rate limit unavailable", extra={"error": type(exc).__name__})
            return await handler(event, data)
        if count <= self.limit:
            return await handler(event, data)
        allowed = await self._allowed(user.id)
        if count <= allowed:
            return await handler(event, data)
        if count == allowed + 1:
            log.info("rate limit engaged", extra={"user_id": user.id, "limit": allowed})
            await self._tell(event, user)
        return None

    async def _allowed(self, user_id: int) -> int:
        """The limit of ``user_id``, asked only past the customers' one."""
        if self.team_limit == self.limit:
            return self.limit
        if user_id in self.owner_ids:
            return self.team_limit
        if self.is_staff is not None:
            try:
                if await self.is_staff(user_id):
                    return self.team_limit
            except BookingError as exc:  # the database is away: the customers' limit is safe
                log.warning("staff lookup failed", extra={"error": type(exc).__name__})
        return self.limit

    async def _tell(self, event: TelegramObject, user: User) -> None:
        if not isinstance(event, Update):
            return
        locale = pick_locale(user.language_code, self.texts.default_locale)
        text = self.texts(locale, "slow_down")
        if event.callback_query is not None:
            await event.callback_query.answer(text, show_alert=True)
        elif event.message is not None:
            await event.message.answer(text)


def _payment(event: TelegramObject) -> bool:
    """A payment's updates: the pre-checkout question and the successful payment."""
    return isinstance(event, Update) and (
        event.pre_checkout_query is not None
        or (event.message is not None and event.message.successful_payment is not None)
    )
