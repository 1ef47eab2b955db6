"""What nothing else handled: outdated buttons, stray messages, and errors."""

from __future__ import annotations

import logging

import asyncpg
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, ErrorEvent, Message
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fleet.errors import ServiceUnavailable
from kit.routing import Routes
from sales_bot.owner_locales import locale_of
from templates import Texts

log = logging.getLogger(__name__)
router = Routes("fallback")
# PostgreSQL or Redis went away (a restart, a network cut): the buyer should simply try again.
BACKEND_DOWN: tuple[type[Exception], ...] = (
    ServiceUnavailable,
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    OSError,
)


@router.callback_query()
async def stale_button(query: CallbackQuery, texts: Texts, locale: str) -> None:
    """A button of an old message, a finished conversation, or malformed data."""
    await query.answer(texts(locale, "stale_button"), show_alert=True)


@router.message()
async def unknown_message(message: Message, texts: Texts, locale: str) -> None:
    await message.answer(texts(locale, "unknown_message"))


@router.errors()
async def on_error(
    event: ErrorEvent, texts: Texts, support: str, locale: str | None = None
) -> bool:
    """Log the error (with the update id, never the text: it may hold a token) and apologise: "try
    again in a minute" while PostgreSQL or Redis is away, "something went wrong" otherwise."""
    target = event.update.message or event.update.callback_query
    user = target.from_user if target is not None else None
    locale = locale or locale_of(user)
    if isinstance(event.exception, BACKEND_DOWN):
        log.warning(
            "sales bot handler failed: a backing service is unavailable",
            extra={"update_id": event.update.update_id, "error": type(event.exception).__name__},
        )
        text = texts(locale, "error_unavailable")
    else:
        log.error(
            "sales bot handler failed",
            exc_info=event.exception,
            extra={"update_id": event.update.update_id},
        )
        text = texts(locale, "error_generic", support=support)
    try:
        if event.update.callback_query is not None:
            await event.update.callback_query.answer(text, show_alert=True)
        elif event.update.message is not None:
            await event.update.message.answer(text)
    except TelegramAPIError:
        log.warning("could not tell the user about the error")
    return True
