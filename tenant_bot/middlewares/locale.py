"""Puts ``locale`` and ``is_owner`` into every handler's data.

The locale is the one the user chose with /language (a Redis hash under the tenant prefix, one HGET
per update), else their Telegram app language if the bot speaks it, else the tenant's default.

Owners are also told things unprompted (new bookings, cancellations, "did they come?" cards), long
after their last update, so the Telegram language an owner's app last reported is remembered too
(a second hash, written only when it changes): notices then go in the owner's language, not the
customers' default.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tenant_bot.texts import BotTexts, pick_locale

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class LocaleStore:
    """The users' chosen locales, and the owners' last seen Telegram languages, in Redis."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}locale"
        self.seen_key = f"{prefix}tglang"

    async def get(self, user_id: int) -> str | None:
        return _text(await self.redis.hget(self.key, str(user_id)))

    async def set(self, user_id: int, locale: str) -> None:
        await self.redis.hset(self.key, str(user_id), locale)

    async def preferences(self, user_id: int) -> tuple[str | None, str | None]:
        """(chosen locale, last seen Telegram ``language_code``) in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.key, str(user_id))
            pipe.hget(self.seen_key, str(user_id))
            chosen, seen = await pipe.execute()
        return _text(chosen), _text(seen)

    async def remember_language_code(self, user_id: int, language_code: str) -> None:
        await self.redis.hset(self.seen_key, str(user_id), language_code[:16])


class LocaleMiddleware(BaseMiddleware):
    """Outer update middleware resolving the user's locale and owner flag."""

    def __init__(self, store: LocaleStore, *, texts: BotTexts, owner_ids: list[int]) -> None:
        self.store = store
        self.texts = texts
        self.owner_ids = frozenset(owner_ids)
        # What this process last wrote per owner: one HSET when the app's language changes, not
        # one per update.
        self._remembered: dict[int, str] = {}

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
        if data["is_owner"] and user is not None and user.language_code:
            await self._remember(user.id, user.language_code)
        return await handler(event, data)

    async def _remember(self, owner_id: int, language_code: str) -> None:
        if self._remembered.get(owner_id) == language_code:
            return
        try:
            await self.store.remember_language_code(owner_id, language_code)
        except RedisError as exc:
            log.warning("cannot remember the owner's language", extra={"error": type(exc).__name__})
            return
        self._remembered[owner_id] = language_code
