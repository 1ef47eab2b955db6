"""Helpers every feature router shares: render a screen in place, answer a stale button."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)

from tenant_bot.booking.models import BusinessSettings
from tenant_bot.keyboards import main_menu
from tenant_bot.texts import BotTexts

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def sender(event: CallbackQuery | Message) -> User:
    """The Telegram user who sent ``event``.

    Telegram leaves ``Message.from_user`` empty only for messages sent on behalf of a channel, which
    never reach these private-chat routers; should one arrive, it fails as ``event.from_user.id``
    would (the same AttributeError), so the error reporter sees what it always saw.
    """
    user = event.from_user
    if user is None:
        raise AttributeError("'NoneType' object has no attribute 'id'")
    return user


def sender_id(event: CallbackQuery | Message) -> int:
    """The Telegram id of the user who sent ``event`` (see :func:`sender`)."""
    return sender(event).id


def _bot(event: CallbackQuery) -> Bot:
    """The bot the dispatcher bound to ``event`` (aiogram types it optional: an object built by
    hand has none); without one, the same AttributeError as ``event.bot.send_message``."""
    bot = event.bot
    if bot is None:
        raise AttributeError("'NoneType' object has no attribute 'send_message'")
    return bot


async def show(event: CallbackQuery | Message, text: str, markup: Markup = None) -> None:
    """Show a screen: edit the tapped message in place, or send a new one for a typed message."""
    if isinstance(event, CallbackQuery):
        message = event.message
        if isinstance(message, Message) and (
            markup is None or isinstance(markup, InlineKeyboardMarkup)
        ):
            try:
                await message.edit_text(text, reply_markup=markup)
            except TelegramBadRequest as exc:
                if "not modified" in exc.message:
                    return
                # Too old to edit, or not a text message: send the screen anew.
                await message.answer(text, reply_markup=markup)
            return
        if message is not None:
            await _bot(event).send_message(message.chat.id, text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)


async def send_menu(
    event: CallbackQuery | Message,
    texts: BotTexts,
    locale: str,
    *,
    is_owner: bool,
    key: str = "menu",
) -> None:
    """A fresh main menu as a new message."""
    message = event.message if isinstance(event, CallbackQuery) else event
    if message is None:
        return
    await message.answer(
        texts(locale, key), reply_markup=main_menu(texts, locale, is_owner=is_owner)
    )


async def stale(callback: CallbackQuery, texts: BotTexts, locale: str, *, is_owner: bool) -> None:
    """ "This button is outdated" and a fresh menu (never an exception for an old button)."""
    await callback.answer(texts(locale, "stale_button"))
    await send_menu(callback, texts, locale, is_owner=is_owner, key="stale_menu")


def welcome(texts: BotTexts, locale: str, settings: BusinessSettings, fallback_name: str) -> str:
    """The /start text: the business name, welcome or description, address, phone, map link."""
    return texts(
        locale,
        "welcome",
        name=settings.business_name or fallback_name,
        welcome=settings.welcome_text,
        description=settings.description,
        address=settings.address,
        phone=settings.phone,
        map_url=settings.map_url,
    )
