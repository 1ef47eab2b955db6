"""Puts ``locale`` and ``is_owner`` into every handler's data.

The locale is the one the user chose with /language (a Redis hash under the tenant prefix, one HGET
per update), else their Telegram app language if the bot speaks it, else the tenant's default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tenant_bot.texts import BotTexts, pick_locale

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class LocaleStore:
    """The users' chosen locales, in Redis."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}locale"

    async def get(self, user_id: int) -> str | None:
        value = await self.redis.hget(self.key, str(user_id))
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, user_id: int, locale: str) -> None:
        await self.redis.hset(self.key, str(user_id), locale)


class LocaleMiddleware(BaseMiddleware):
    """Outer update middleware resolving the user's locale and owner flag."""

    def __init__(self, store: LocaleStore, *, texts: BotTexts, owner_ids: list[int]) -> None:
        self.store = store
        self.texts = texts
        self.owner_ids = frozenset(owner_ids)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        # The throttle middleware usually fetched it already, in its own round trip.
        prefetched = "chosen_locale" in data
        chosen = data.pop("chosen_locale", None)
        if user is not None and not prefetched:
            try:
                chosen = await self.store.get(user.id)
            except RedisError:
                chosen = None
        default = self.texts.default_locale
        data["locale"] = chosen or pick_locale(user.language_code if user else None, default)
        data["is_owner"] = user is not None and user.id in self.owner_ids
        return await handler(event, data)
