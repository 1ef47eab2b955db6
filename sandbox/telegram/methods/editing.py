"""Editing messages and answering button presses.

Telegram quirks kept on purpose: editing a text without ``reply_markup`` drops the inline keyboard,
and an edit that changes nothing fails with "message is not modified".
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.telegram.errors import bad_request
from sandbox.telegram.formatting import apply_parse_mode, utf16_len
from sandbox.telegram.methods.base import CallContext, message_for_edit, parse_reply_markup
from sandbox.telegram.models import ChatMessage, Conversation
from sandbox.telegram.params import Params
from sandbox.telegram.render import message_to_api

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


def _keep_reply_keyboard(msg: ChatMessage, markup: dict[str, Any] | None) -> dict[str, Any] | None:
    # A reply keyboard is not part of the message's editable content; only inline ones are.
    if markup is None and msg.reply_markup and "inline_keyboard" not in msg.reply_markup:
        return msg.reply_markup
    return markup


def _apply(
    ctx: CallContext, conv: Conversation, msg: ChatMessage, changes: dict[str, Any]
) -> dict[str, Any]:
    if all(getattr(msg, key) == value for key, value in changes.items()):
        raise bad_request(_NOT_MODIFIED)
    for key, value in changes.items():
        setattr(msg, key, value)
    msg.edit_date = ctx.world.now()
    ctx.world.touch(conv)
    return message_to_api(conv, msg)


async def edit_message_text(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``editMessageText``."""
    conv, msg = message_for_edit(ctx, params)
    raw = params.str("text")
    if raw is None or not raw.strip():
        raise bad_request("message text is empty")
    if msg.text is None:
        raise bad_request("there is no text in the message to edit")
    text, entities = apply_parse_mode(raw, params.str("parse_mode"), params.json("entities"))
    if utf16_len(text) > 4096:
        raise bad_request("MESSAGE_TOO_LONG")
    markup = _keep_reply_keyboard(msg, parse_reply_markup(params, inline_only=True))
    return _apply(ctx, conv, msg, {"text": text, "entities": entities, "reply_markup": markup})


async def edit_message_caption(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``editMessageCaption``."""
    conv, msg = message_for_edit(ctx, params)
    if msg.document is None and msg.photo is None:
        raise bad_request("there is no caption in the message to edit")
    raw = params.str("caption") or ""
    caption, entities = apply_parse_mode(
        raw, params.str("parse_mode"), params.json("caption_entities")
    )
    markup = _keep_reply_keyboard(msg, parse_reply_markup(params, inline_only=True))
    changes = {
        "caption": caption or None,
        "caption_entities": entities,
        "reply_markup": markup,
    }
    return _apply(ctx, conv, msg, changes)


async def edit_message_reply_markup(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``editMessageReplyMarkup`` (no markup removes the inline keyboard)."""
    conv, msg = message_for_edit(ctx, params)
    markup = _keep_reply_keyboard(msg, parse_reply_markup(params, inline_only=True))
    return _apply(ctx, conv, msg, {"reply_markup": markup})


async def answer_callback_query(ctx: CallContext, params: Params) -> bool:
    """``answerCallbackQuery``: the answer is shown to the user (toast, alert or URL)."""
    query_id = params.str("callback_query_id", required=True)
    record = ctx.world.callbacks.get(query_id or "")
    too_old = record is not None and (
        time.monotonic() - record.created > ctx.world.config.callback_query_ttl
    )
    if record is None or record.bot_id != ctx.bot.id or record.answered or too_old:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    record.answered = True
    record.answer = {
        "callback_query_id": record.id,
        "text": text,
        "show_alert": params.bool("show_alert"),
        "url": params.str("url"),
        "cache_time": params.int("cache_time") or 0,
    }
    conv = ctx.world.conversations.get((record.bot_id, record.user_id))
    if conv is not None:
        conv.callback_answers.append(record.answer)
        ctx.world.touch(conv)
    return True


METHODS = {
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "answerCallbackQuery": answer_callback_query,
}
