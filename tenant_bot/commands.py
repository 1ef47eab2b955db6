"""The command menus Telegram shows next to the input field, per audience and language.

Customers see /start, /book, /my, /language, /help; each owner additionally sees /admin in their own
chat scope. Every list is published once per bot language (``language_code``) and once without one,
in the tenant's default locale, for apps in other languages.

A staff member linked to a Telegram account sees /staff in their own chat scope (issue 21): one
list without a ``language_code``, in the language they use the bot in (so it follows /language
rather than their app's language), set when they accept the owner's invitation or pick a language,
and deleted when the owner unlinks or switches them off. Telegram keeps these menus across restarts,
so they follow those events; the start-up only gives one to a linked member's chat that has none
(members linked before the menu existed, or a call Telegram refused at the time), leaving the
others in the language they were set in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from tenant_bot.texts import BotTexts

log = logging.getLogger(__name__)

CUSTOMER_COMMANDS = ("start", "book", "my", "language", "help")
OWNER_COMMANDS = ("admin", *CUSTOMER_COMMANDS)
STAFF_COMMANDS = ("staff", *CUSTOMER_COMMANDS)


def command_list(texts: BotTexts, locale: str, names: tuple[str, ...]) -> list[BotCommand]:
    """Commands with their localized descriptions (``cmd_<name>`` texts)."""
    return [BotCommand(command=name, description=texts(locale, f"cmd_{name}")) for name in names]


async def register_commands(bot: Bot, *, texts: BotTexts, owner_ids: list[int]) -> None:
    """``setMyCommands`` for customers and owners in every locale; failures are logged, not fatal
    (a menu is a convenience, the bot works without it)."""
    calls: list[
        tuple[list[BotCommand], BotCommandScopeDefault | BotCommandScopeChat, str | None]
    ] = []
    for language in (*texts.locales, None):
        locale = language or texts.default_locale
        calls.append(
            (command_list(texts, locale, CUSTOMER_COMMANDS), BotCommandScopeDefault(), language)
        )
        for owner in owner_ids:
            calls.append(
                (
                    command_list(texts, locale, OWNER_COMMANDS),
                    BotCommandScopeChat(chat_id=owner),
                    language,
                )
            )
    for commands, scope, language in calls:
        try:
            await bot.set_my_commands(commands, scope=scope, language_code=language)
        except TelegramAPIError as exc:
            log.warning(
                "setMyCommands failed",
                extra={"scope": scope.type, "language": language, "error": type(exc).__name__},
            )


async def set_staff_menu(bot: Bot, *, texts: BotTexts, chat_id: int, locale: str) -> bool:
    """The staff member's menu (/staff first) in their chat, in ``locale``; False if Telegram
    refused (logged: the desk works without a menu)."""
    scope = BotCommandScopeChat(chat_id=chat_id)
    try:
        await bot.set_my_commands(command_list(texts, locale, STAFF_COMMANDS), scope=scope)
    except TelegramAPIError as exc:
        log.warning(
            "setMyCommands failed", extra={"scope": scope.type, "error": type(exc).__name__}
        )
        return False
    return True


async def remove_staff_menu(bot: Bot, *, chat_id: int) -> bool:
    """Back to the customers' menu in that chat (the chat scope's list deleted); False if
    Telegram refused (logged)."""
    scope = BotCommandScopeChat(chat_id=chat_id)
    try:
        await bot.delete_my_commands(scope=scope)
    except TelegramAPIError as exc:
        log.warning(
            "deleteMyCommands failed", extra={"scope": scope.type, "error": type(exc).__name__}
        )
        return False
    return True


async def restore_staff_menus(
    bot: Bot,
    *,
    texts: BotTexts,
    chat_ids: Iterable[int],
    locale_of: Callable[[int], Awaitable[str | None]],
) -> int:
    """At start: the staff menu for each linked member's chat (``chat_ids``) that has none, in
    the locale the member chose (``locale_of``) else the tenant's default; returns how many
    were set. A chat whose menu Telegram will not say is left as it is (logged)."""
    restored = 0
    for chat_id in chat_ids:
        scope = BotCommandScopeChat(chat_id=chat_id)
        try:
            if await bot.get_my_commands(scope=scope):
                continue
        except TelegramAPIError as exc:
            log.warning(
                "getMyCommands failed", extra={"scope": scope.type, "error": type(exc).__name__}
            )
            continue
        locale = await locale_of(chat_id) or texts.default_locale
        restored += await set_staff_menu(bot, texts=texts, chat_id=chat_id, locale=locale)
    return restored
