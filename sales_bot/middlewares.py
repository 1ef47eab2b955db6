"""The sales bot's middlewares: the user's locale and a per-user rate limit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject, User
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from sales_bot.owner_locales import OwnerLocales, locale_of

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class OwnerLocaleMiddleware(BaseMiddleware):
    """Puts ``locale`` into the handler data: the language the user chose (``owners``), else their
    Telegram app's."""

    def __init__(self, owners: OwnerLocales | None = None) -> None:
        self._owners = owners

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if self._owners is not None and user is not None:
            data["locale"] = await self._owners.of(user)
        else:
            data["locale"] = locale_of(user)
        return await handler(event, data)


class RateLimitMiddleware(BaseMiddleware):
    """A moving-window limit per user in Redis (``<installation>:bf:sales:rl:...``), shared by every sales bot
    process. Over the limit, buttons are answered with a short notice (a toast); of the messages,
    the first one over the limit is answered with that notice and the rest are dropped in silence,
    one notice per user and window."""

    def __init__(
        self,
        *,
        redis: Redis,
        redis_url: str,
        key_prefix: str,
        rate: str,
        notice: Callable[[str], str],
    ) -> None:
        self._limit: RateLimitItem = parse(rate)
        self._notice_limit: RateLimitItem = parse(f"1/{self._limit.get_expiry()}seconds")
        # On the caller's connection pool: its owner closes it (a pool of our own would be left
        # open when the bot stops).
        storage = RedisStorage(
            "async+" + redis_url,
            implementation="redispy",
            key_prefix=key_prefix,
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # documented option
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._notice = notice

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or await self._limiter.hit(self._limit, "user", str(user.id)):
            return await handler(event, data)
        log.info("sales bot rate limit hit", extra={"telegram_user": user.id})
        if isinstance(event, Message):
            # One notice per user and window; the rest of a burst is dropped in silence.
            if not await self._limiter.hit(self._notice_limit, "notice", str(user.id)):
                return None
        elif not isinstance(event, CallbackQuery):
            return None
        try:
            await event.answer(self._notice(data.get("locale", "ru")))  # a callback: a toast
        except TelegramAPIError:
            log.warning("could not tell a user to slow down", extra={"telegram_user": user.id})
        return None
