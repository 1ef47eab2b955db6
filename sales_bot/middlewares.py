"""The sales bot's middlewares: the user's locale and a per-user rate limit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, TelegramObject, User
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from templates import LOCALES

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def locale_of(user: User | None, default: str = "ru") -> str:
    """The interface language for a Telegram user: theirs if we speak it, else ``default``."""
    code = (user.language_code or "")[:2].lower() if user else ""
    return code if code in LOCALES else default


class LocaleMiddleware(BaseMiddleware):
    """Puts ``locale`` into the handler data."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["locale"] = locale_of(data.get("event_from_user"))
        return await handler(event, data)


class RateLimitMiddleware(BaseMiddleware):
    """A moving-window limit per user in Redis (``bf:sales:rl:...``), shared by every sales bot
    process. Over the limit, messages are dropped and buttons answered with a short notice."""

    def __init__(self, *, redis_url: str, rate: str, notice: Callable[[str], str]) -> None:
        self._limit: RateLimitItem = parse(rate)
        storage = RedisStorage(
            "async+" + redis_url, implementation="redispy", key_prefix="bf:sales:rl"
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._notice = notice

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not await self._limiter.hit(self._limit, "user", str(user.id)):
            log.info("sales bot rate limit hit", extra={"telegram_user": user.id})
            if isinstance(event, CallbackQuery):
                await event.answer(self._notice(data.get("locale", "ru")))
            return None
        return await handler(event, data)
