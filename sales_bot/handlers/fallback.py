"""What nothing else handled: outdated buttons, stray messages, and errors."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, ErrorEvent, Message

from sales_bot.owner_locales import locale_of
from sales_bot.routing import RouteTable
from templates import Texts

log = logging.getLogger(__name__)
router = RouteTable("fallback")


@router.callback_query()
async def stale_button(query: CallbackQuery, texts: Texts, locale: str) -> None:
    """A button of an old message, a finished conversation, or malformed data."""
    await query.answer(texts(locale, "stale_button"), show_alert=True)


@router.message()
async def unknown_message(message: Message, texts: Texts, locale: str) -> None:
    await message.answer(texts(locale, "unknown_message"))


@router.errors()
async def on_error(event: ErrorEvent, texts: Texts, support: str) -> bool:
    """Log the error (with the update id, never the text: it may hold a token) and apologise."""
    log.error(
        "sales bot handler failed",
        exc_info=event.exception,
        extra={"update_id": event.update.update_id},
    )
    target = event.update.message or event.update.callback_query
    user = target.from_user if target is not None else None
    locale = locale_of(user)
    text = texts(locale, "error_generic", support=support)
    try:
        if event.update.callback_query is not None:
            await event.update.callback_query.answer(text, show_alert=True)
        elif event.update.message is not None:
            await event.update.message.answer(text)
    except TelegramAPIError:
        log.warning("could not tell the user about the error")
    return True
