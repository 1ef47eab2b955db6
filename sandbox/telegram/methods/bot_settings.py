"""The bot's own settings and lookups: getMe, commands, menu button, names, getChat, getFile."""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.telegram.errors import bad_request
from sandbox.telegram.methods.base import CallContext, Handler
from sandbox.telegram.params import Params

_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_LANGUAGE = re.compile(r"^([a-z]{2})?$")
_SCOPES = {
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
}


async def get_me(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``getMe``."""
    bot = ctx.bot
    return {
        **bot.to_user(),
        "can_join_groups": bot.can_join_groups,
        "can_read_all_group_messages": bot.can_read_all_group_messages,
        "supports_inline_queries": bot.supports_inline_queries,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def log_out(ctx: CallContext, params: Params) -> bool:
    """``logOut`` / ``close``: nothing to release in the emulator."""
    return True


def _scope_key(params: Params) -> tuple[str, str]:
    scope = params.json("scope") or {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
        raise bad_request("can't parse BotCommandScope JSON object")
    language = params.str("language_code") or ""
    if not _LANGUAGE.match(language):
        raise bad_request("invalid language code specified")
    return json.dumps(scope, sort_keys=True), language


async def set_my_commands(ctx: CallContext, params: Params) -> bool:
    """``setMyCommands`` per scope and language, validated like Telegram."""
    commands = params.json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    cleaned: list[dict[str, Any]] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command = str(item.get("command", "")).removeprefix("/")
        if not _COMMAND.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        description = str(item.get("description", ""))
        if not 1 <= len(description) <= 256:
            raise bad_request("command description is empty")
        cleaned.append({"command": command, "description": description})
    key = _scope_key(params)
    if cleaned:
        ctx.bot.commands[key] = cleaned
    else:
        ctx.bot.commands.pop(key, None)
    ctx.world.bot_changed(ctx.bot)
    return True


async def get_my_commands(ctx: CallContext, params: Params) -> list[dict[str, Any]]:
    """``getMyCommands`` for exactly the given scope and language (no fallback, as Telegram)."""
    return list(ctx.bot.commands.get(_scope_key(params), []))


async def delete_my_commands(ctx: CallContext, params: Params) -> bool:
    """``deleteMyCommands``."""
    ctx.bot.commands.pop(_scope_key(params), None)
    return True


async def set_chat_menu_button(ctx: CallContext, params: Params) -> bool:
    """``setChatMenuButton`` for one chat or, without ``chat_id``, the default."""
    chat_id = params.int("chat_id")
    button = params.json("menu_button") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
        raise bad_request("can't parse menu button JSON object")
    ctx.bot.menu_buttons[chat_id] = button
    return True


async def get_chat_menu_button(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``getChatMenuButton`` (the chat's, else the default, else ``commands``)."""
    chat_id = params.int("chat_id")
    buttons = ctx.bot.menu_buttons
    return buttons.get(chat_id) or buttons.get(None) or {"type": "commands"}


def _text_setter(kind: str, limit: int) -> tuple[Handler, Handler]:
    async def setter(ctx: CallContext, params: Params) -> bool:
        value = params.str(kind) or ""
        if len(value) > limit:
            raise bad_request(f"{kind} is too long")
        language = params.str("language_code") or ""
        ctx.bot.texts[(kind, language)] = value
        if kind == "name" and value and not language:
            ctx.bot.first_name = value
        ctx.world.bot_changed(ctx.bot)
        return True

    async def getter(ctx: CallContext, params: Params) -> dict[str, str]:
        language = params.str("language_code") or ""
        texts = ctx.bot.texts
        fallback = ctx.bot.first_name if kind == "name" else ""
        return {kind: texts.get((kind, language), texts.get((kind, ""), fallback))}

    return setter, getter


_set_name, _get_name = _text_setter("name", 64)
_set_description, _get_description = _text_setter("description", 512)
_set_short, _get_short = _text_setter("short_description", 120)


async def get_chat(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``getChat`` for a private chat with a user who started the bot."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=False)
    return {
        **conv.user.to_chat(),
        "accent_color_id": conv.user.id % 7,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": True,
            "limited_gifts": True,
            "unique_gifts": True,
            "premium_subscription": True,
            "gifts_from_channels": True,
        },
    }


async def get_file(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``getFile``: the ``file_path`` downloads from ``/file/bot<token>/<file_path>``."""
    file_id = params.str("file_id", required=True)
    stored = ctx.world.find_file(file_id or "")
    if stored is None or not stored.usable_by(ctx.bot.id):
        raise bad_request("invalid file_id")
    return stored.to_file(file_id)


METHODS = {
    "getMe": get_me,
    "logOut": log_out,
    "close": log_out,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "setChatMenuButton": set_chat_menu_button,
    "getChatMenuButton": get_chat_menu_button,
    "setMyName": _set_name,
    "getMyName": _get_name,
    "setMyDescription": _set_description,
    "getMyDescription": _get_description,
    "setMyShortDescription": _set_short,
    "getMyShortDescription": _get_short,
    "getChat": get_chat,
    "getFile": get_file,
}
