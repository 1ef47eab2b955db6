"""The last line of defence: any exception a handler lets through is logged with its context and the
user is told, in their language, that something went wrong — never shown a stack trace.

Domain errors that reach here (a handler did not expect them) still get their specific text; a lost
database or Redis gets "try again in a minute" (logged as a warning without a traceback: the outage
itself is logged with its cause and counted where it was met); a button naming a service, staff member or booking
that no longer exists (or never did: a forged payload) is a stale button, answered as one and logged
at info level, without a traceback; Telegram's "message is not modified" (a double tap re-rendering
the same screen) is not an error at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import CallbackQuery, ErrorEvent, User
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenant_bot.booking.db import StorageOutages
from tenant_bot.booking.errors import BookingError, NotFound, StorageError, StorageUnavailable
from tenant_bot.keyboards import main_menu
from tenant_bot.texts import BotTexts, pick_locale

log = logging.getLogger(__name__)


def _is_outage(exc: BaseException) -> bool:
    """PostgreSQL or Redis (conversations, locks) is away: temporary, not a bug."""
    return isinstance(exc, StorageUnavailable | RedisConnectionError | RedisTimeoutError)


def error_text(texts: BotTexts, locale: str, exc: BaseException) -> str:
    """The message for an error a user ran into."""
    if _is_outage(exc):
        # PostgreSQL or Redis (conversations, locks) is away: it is temporary, say so
        return texts(locale, "error_unavailable")
    if isinstance(exc, BookingError) and not isinstance(exc, StorageError):
        key = f"error_{exc.code}"
        if texts.has(locale, key):
            return texts(locale, key, **_safe_details(exc))
    return texts(locale, "error_generic")


def _safe_details(exc: BookingError) -> dict[str, object]:
    return {k: v for k, v in exc.details.items() if isinstance(v, str | int | float)}


class ErrorReporter:
    """``dp.errors`` handler; ``owner_ids`` get the owner's menu with a stale button's answer; a
    Redis outage a user met is counted in ``outages`` (cause ``redis``; the database's are counted
    where they are met)."""

    def __init__(
        self,
        texts: BotTexts,
        *,
        owner_ids: frozenset[int] = frozenset(),
        outages: StorageOutages | None = None,
    ) -> None:
        self.texts = texts
        self.owner_ids = owner_ids
        self.outages = outages

    async def handle(self, event: ErrorEvent) -> bool:
        exc = event.exception
        update = event.update
        if isinstance(exc, TelegramBadRequest) and "message is not modified" in exc.message:
            if update.callback_query is not None:
                await _quietly(update.callback_query.answer())
            return True
        user: User | None = update.event.from_user if hasattr(update.event, "from_user") else None
        if isinstance(exc, NotFound) and update.callback_query is not None:
            await self._stale(update.callback_query, exc, user)
            return True
        context = {
            "update_id": update.update_id,
            "update_type": update.event_type,
            "user_id": user.id if user else None,
            "error": type(exc).__name__,
            "code": getattr(exc, "code", None),
        }
        if _is_outage(exc):
            # where the outage was met it is logged with its cause and counted; a traceback per
            # update during an outage would bury the log
            log.warning("update failed: a dependency is unavailable", extra=context)
            if self.outages is not None and not isinstance(exc, StorageUnavailable):
                self.outages.note("redis")
        else:
            log.error("update failed", exc_info=(type(exc), exc, exc.__traceback__), extra=context)
        locale = pick_locale(user.language_code if user else None, self.texts.default_locale)
        text = error_text(self.texts, locale, exc)
        if update.callback_query is not None:
            await _quietly(update.callback_query.answer())
            if update.callback_query.message is not None:
                await _quietly(update.callback_query.message.answer(text))
        elif update.message is not None:
            await _quietly(update.message.answer(text))
        return True

    async def _stale(self, callback: CallbackQuery, exc: NotFound, user: User | None) -> None:
        """A tap on something gone: the same answer as any outdated button (a toast and a fresh
        menu), logged at info: nothing is broken, nobody needs a traceback."""
        log.info(
            "stale button",
            extra={
                "user_id": user.id if user else None,
                "entity": exc.details.get("entity"),
                "id": exc.details.get("id"),
            },
        )
        locale = pick_locale(user.language_code if user else None, self.texts.default_locale)
        await _quietly(callback.answer(self.texts(locale, "stale_button")))
        if callback.message is not None:
            is_owner = user is not None and user.id in self.owner_ids
            markup = main_menu(self.texts, locale, is_owner=is_owner)
            await _quietly(
                callback.message.answer(self.texts(locale, "stale_menu"), reply_markup=markup)
            )


async def _quietly(awaitable: Awaitable[object]) -> None:
    try:
        await awaitable
    except TelegramAPIError as exc:
        log.warning("could not report an error to the user", extra={"error": type(exc).__name__})
