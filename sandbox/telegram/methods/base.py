"""What every Bot API method handler receives, and shared parameter helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.telegram.errors import bad_request
from sandbox.telegram.models import BotAccount, ChatMessage, Conversation
from sandbox.telegram.params import Params
from sandbox.telegram.world import TelegramWorld


class WebhookControl(Protocol):
    """The part of webhook delivery that ``setWebhook``/``deleteWebhook`` drive."""

    def start(self, bot: BotAccount) -> None:
        """Begin (or keep) delivering the bot's queued updates to its webhook."""

    def stop(self, bot: BotAccount) -> None:
        """Stop delivering updates for the bot."""


@dataclass
class CallContext:
    """One Bot API call: the world, the calling bot and the emulator's shared services."""

    world: TelegramWorld
    bot: BotAccount
    webhooks: WebhookControl
    closing: asyncio.Event


Handler = Callable[[CallContext, Params], Awaitable[Any]]

_INLINE_TARGETS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def parse_reply_markup(params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate ``reply_markup`` like Telegram: shape, button targets, callback data size."""
    markup = params.json("reply_markup", what="reply keyboard markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
        return {"inline_keyboard": markup["inline_keyboard"]}
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request('field "keyboard" must be an Array of Arrays')
        for row in rows:
            for button in row:
                if not isinstance(button, str | dict) or (
                    isinstance(button, dict) and not button.get("text")
                ):
                    raise bad_request("can't parse keyboard button: Text buttons are unallowed")
        return markup
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request('field "inline_keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: Text must be a String")
            targets = [key for key in _INLINE_TARGETS if key in button]
            if len(targets) != 1:
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "InlineKeyboardButton must have exactly one optional field"
                )
            data = button.get("callback_data")
            if data is not None and not (1 <= len(str(data).encode()) <= 64):
                raise bad_request("BUTTON_DATA_INVALID")


def reply_target(params: Params, conv: Conversation) -> int | None:
    """The message a new message replies to (``reply_parameters`` or the legacy parameter)."""
    reply = params.json("reply_parameters")
    allow_missing = params.bool("allow_sending_without_reply")
    if isinstance(reply, dict):
        message_id = reply.get("message_id")
        allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
    else:
        message_id = params.int("reply_to_message_id")
    if message_id is None:
        return None
    target = conv.messages.get(int(message_id))
    if target is None or target.deleted:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return target.message_id


def message_for_edit(ctx: CallContext, params: Params) -> tuple[Conversation, ChatMessage]:
    """The bot's own message addressed by ``chat_id`` + ``message_id`` in an edit call."""
    if "inline_message_id" in params:
        raise bad_request("MESSAGE_ID_INVALID")
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=False)
    message_id = params.int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    msg = conv.messages.get(message_id)
    if msg is None or msg.deleted:
        raise bad_request("message to edit not found")
    if not msg.from_bot:
        raise bad_request("message can't be edited")
    return conv, msg
