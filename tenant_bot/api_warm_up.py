"""Run the Bot API request and response code of the methods a tenant bot calls, once, without I/O.

For the fork server's warm-up (:func:`tenant_bot.app.warm_up`, issue 17): building a request
(``model_dump`` and aiogram's ``prepare_value`` of every field) and checking a response (the
``Response[...]`` validation) the first time in a process fills caches that then live in shared
objects — the ABCs' subclass caches (an ABC check of a value sent adds a negative entry to every
subclass it walks: ~110 in a bot's first requests) — and warms the bytecode of that path. Done in every forked bot, it copied those pages into each; done once here,
before the freeze, the bots share them. Nothing is sent: no session is opened.
"""

from __future__ import annotations

import json
from typing import Any

from aiogram import Bot
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetMyName,
    SendMessage,
    SetMyCommands,
    SetMyName,
    TelegramMethod,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

_USER = {"id": 1, "is_bot": True, "first_name": "Warm-up", "username": "warm_up_bot"}
_MESSAGE = {
    "message_id": 1,
    "date": 1700000000,
    "chat": {"id": 1, "type": "private", "first_name": "Warm-up"},
    "from": _USER,
    "text": "warm-up",
    "reply_markup": {"inline_keyboard": [[{"text": "1", "callback_data": "x:1"}]]},
}


def _samples() -> list[tuple[TelegramMethod[Any], Any]]:
    """A request of each kind a bot sends and a result of the kind Telegram answers with."""
    inline = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="1", callback_data="x:1")]]
    )
    keyboard = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="1", request_contact=True)]])
    commands = [BotCommand(command="start", description="Start")]
    return [
        (GetMe(), _USER),
        (GetMyName(), {"name": "Warm-up"}),
        (SetMyName(name="Warm-up"), True),
        (SetMyCommands(commands=commands, scope=BotCommandScopeDefault()), True),
        (SetMyCommands(commands=commands, scope=BotCommandScopeChat(chat_id=1)), True),
        (SendMessage(chat_id=1, text="<b>1</b>", reply_markup=inline), _MESSAGE),
        (SendMessage(chat_id=1, text="1", reply_markup=keyboard), _MESSAGE),
        (SendMessage(chat_id=1, text="1", reply_markup=ReplyKeyboardRemove()), _MESSAGE),
        (EditMessageText(chat_id=1, message_id=1, text="1", reply_markup=inline), _MESSAGE),
        (EditMessageReplyMarkup(chat_id=1, message_id=1, reply_markup=inline), _MESSAGE),
        (AnswerCallbackQuery(callback_query_id="1", text="1"), True),
        (DeleteMessage(chat_id=1, message_id=1), True),
    ]


def warm_api_paths(bot: Bot) -> None:
    """Build each sample request and check its sample response with ``bot``'s session."""
    session: Any = bot.session
    for method, result in _samples():
        session.build_form_data(bot, method)
        session.check_response(
            bot=bot,
            method=method,
            status_code=200,
            content=json.dumps({"ok": True, "result": result}),
        )
