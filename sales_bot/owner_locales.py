"""The language each person speaks with the sales bot, remembered in ``control.owners``.

Owners hear about their bots (payments, "your bot is live", reminders) in this language, from the
outbox, long after the conversation: so it is stored, not only read off the update. It is the language
a person chose with /language, else the one their Telegram app reports (followed when it changes).
Kept in a per-process cache: one statement per person and process, and one more when their app's
language changes.
"""

from __future__ import annotations

import logging

import asyncpg
from aiogram.types import User

from fleet.repositories import owners as owner_repo
from templates import LOCALES

log = logging.getLogger(__name__)


def locale_of(user: User | None, default: str = "ru") -> str:
    """The interface language for a Telegram user: theirs if we speak it, else ``default``."""
    code = (user.language_code or "")[:2].lower() if user else ""
    return code if code in LOCALES else default


class OwnerLocales:
    """Looks up and remembers people's languages."""

    def __init__(self, pool: asyncpg.Pool, *, default: str = "ru", cache_size: int = 100_000):
        self._pool = pool
        self._default = default
        # user id -> (their app's language when last asked, the language to speak)
        self._cache: dict[int, tuple[str, str]] = {}
        self._cache_size = cache_size

    async def of(self, user: User) -> str:
        """The language to speak with ``user``: their choice, else their app's (remembered, so
        the outbox can use it later). While the database is unreachable, the app's language."""
        app_locale = locale_of(user, self._default)
        cached = self._cache.get(user.id)
        if cached is not None and cached[0] == app_locale:
            return cached[1]
        try:
            locale = await owner_repo.seen(self._pool, user.id, app_locale)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("owner language unavailable", extra={"error": type(exc).__name__})
            return app_locale
        self._remember(user.id, app_locale, locale)
        return locale

    async def choose(self, user: User, locale: str) -> None:
        """``user`` picked ``locale`` (one of ``LOCALES``) with /language."""
        if locale not in LOCALES:
            raise ValueError(f"unsupported locale {locale!r}; use one of {', '.join(LOCALES)}")
        await owner_repo.choose(self._pool, user.id, locale)
        self._remember(user.id, locale_of(user, self._default), locale)

    def _remember(self, user_id: int, app_locale: str, locale: str) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # rare and cheap to refill: one statement per person
        self._cache[user_id] = (app_locale, locale)
