"""Sending and deleting messages: sendMessage, sendDocument, sendPhoto, sendChatAction, delete*."""

from __future__ import annotations

import mimetypes
from typing import Any

from sandbox.telegram.errors import bad_request
from sandbox.telegram.formatting import apply_parse_mode, utf16_len
from sandbox.telegram.methods.base import CallContext, parse_reply_markup, reply_target
from sandbox.telegram.models import ChatMessage, Conversation, StoredFile
from sandbox.telegram.params import Params, Upload
from sandbox.telegram.render import message_to_api

_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}


def _post(ctx: CallContext, conv: Conversation, params: Params, **fields: Any) -> dict[str, Any]:
    """Common tail of every send method: flood control, store, notify, render."""
    markup = parse_reply_markup(params)
    reply_to = reply_target(params, conv)
    ctx.world.limiter.hit(ctx.bot.id, conv.user.id)
    msg = ChatMessage(
        message_id=conv.new_message_id(),
        from_bot=True,
        date=ctx.world.now(),
        reply_markup=markup,
        reply_to_message_id=reply_to,
        **fields,
    )
    conv.messages[msg.message_id] = msg
    ctx.world.touch(conv)
    return message_to_api(conv, msg)


def caption_of(params: Params) -> tuple[str | None, list[dict[str, Any]]]:
    """Caption with ``parse_mode`` applied; Telegram caps captions at 1024 characters."""
    caption = params.str("caption")
    if caption is None:
        return None, []
    text, entities = apply_parse_mode(
        caption, params.str("parse_mode"), params.json("caption_entities")
    )
    if utf16_len(text) > 1024:
        raise bad_request("message caption is too long")
    return text, entities


async def send_message(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``sendMessage``."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=True)
    raw = params.str("text")
    if raw is None or not raw.strip():
        raise bad_request("message text is empty")
    text, entities = apply_parse_mode(raw, params.str("parse_mode"), params.json("entities"))
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > 4096:
        raise bad_request("message is too long")
    return _post(ctx, conv, params, text=text, entities=entities)


def resolve_file(ctx: CallContext, params: Params, name: str) -> StoredFile:
    """An uploaded file (stored now, owned by the calling bot) or an existing ``file_id``.

    As in Telegram, a ``file_id`` works only for the bot that received or sent the file, and only
    as the same kind of file (a photo as a photo)."""
    value = params.file(name)
    if value is None:
        raise bad_request(f"there is no {name} in the request")
    if isinstance(value, Upload):
        if not value.data:
            raise bad_request("file must be non-empty")
        if name == "photo":
            try:
                return ctx.world.store_photo(value.data, bot_id=ctx.bot.id, filename=value.filename)
            except ValueError as exc:
                raise bad_request(str(exc)) from None
        if value.content_type in ("", "application/octet-stream"):
            guessed = mimetypes.guess_type(value.filename)[0]
            value = Upload(value.data, value.filename, guessed or "application/octet-stream")
        return ctx.world.store_file(value, kind=name, bot_id=ctx.bot.id)
    stored = ctx.world.find_file(value)
    if stored is None or not stored.usable_by(ctx.bot.id):
        raise bad_request("wrong file identifier/HTTP URL specified")
    if (stored.kind == "photo") != (name == "photo"):
        raise bad_request("type of file mismatch")
    return stored


async def send_document(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``sendDocument``: the bytes are kept so the user (and getFile) can read them back."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=True)
    stored = resolve_file(ctx, params, "document")
    caption, entities = caption_of(params)
    return _post(ctx, conv, params, document=stored, caption=caption, caption_entities=entities)


async def send_photo(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``sendPhoto``: an upload (at most 10 MB, a real image) or a ``file_id`` of this bot's.

    The caption is checked first, as Telegram does: 1024 characters after entity parsing."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=True)
    caption, entities = caption_of(params)
    stored = resolve_file(ctx, params, "photo")
    return _post(ctx, conv, params, photo=stored, caption=caption, caption_entities=entities)


async def send_chat_action(ctx: CallContext, params: Params) -> bool:
    """``sendChatAction``: recorded so tests can see "typing..." was shown."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=True)
    action = params.str("action")
    if action is None:
        raise bad_request("action is empty")
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    conv.chat_actions.append({"action": action, "date": ctx.world.now()})
    ctx.world.touch(conv)
    return True


def _delete(ctx: CallContext, conv: Conversation, message_id: int) -> bool:
    msg = conv.messages.get(message_id)
    if msg is None or msg.deleted:
        return False
    msg.deleted = True
    return True


async def delete_message(ctx: CallContext, params: Params) -> bool:
    """``deleteMessage``: bots may delete both their own and the user's messages in private."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=False)
    message_id = params.int("message_id", required=True)
    assert message_id is not None
    if not _delete(ctx, conv, message_id):
        raise bad_request("message to delete not found")
    ctx.world.touch(conv)
    return True


async def delete_messages(ctx: CallContext, params: Params) -> bool:
    """``deleteMessages``: missing ids are skipped, as Telegram does."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=False)
    ids = params.json("message_ids")
    if not isinstance(ids, list) or not ids or len(ids) > 100:
        raise bad_request("message_ids must be a non-empty array of at most 100 integers")
    if any([_delete(ctx, conv, int(i)) for i in ids]):
        ctx.world.touch(conv)
    return True


METHODS = {
    "sendMessage": send_message,
    "sendDocument": send_document,
    "sendPhoto": send_photo,
    "sendChatAction": send_chat_action,
    "deleteMessage": delete_message,
    "deleteMessages": delete_messages,
}
