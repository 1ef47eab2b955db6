"""Rendering records as Bot API objects (what bots see) and as chat views (what users see)."""

from __future__ import annotations

from typing import Any

from sandbox.telegram.models import ChatMessage, Conversation, StoredFile


def document_to_api(stored: StoredFile) -> dict[str, Any]:
    """A Telegram ``Document`` object."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": stored.file_name,
        "mime_type": stored.mime_type,
        "file_size": len(stored.data),
    }


def photo_to_api(stored: StoredFile) -> list[dict[str, Any]]:
    """A Telegram photo: a list of ``PhotoSize``, smallest first, the largest last."""
    largest = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "width": stored.width or 512,
        "height": stored.height or 512,
    }
    return [{**size, "file_size": len(stored.data)} for size in (*stored.sizes, largest)]


def invoice_to_api(invoice: dict[str, Any]) -> dict[str, Any]:
    """A Telegram ``Invoice`` object (what a message shows of an invoice)."""
    return {
        key: invoice[key]
        for key in ("title", "description", "start_parameter", "currency", "total_amount")
    }


def message_to_api(conv: Conversation, msg: ChatMessage, *, nested: bool = False) -> dict[str, Any]:
    """A Telegram ``Message`` object as the bot receives it."""
    sender = conv.bot.to_user() if msg.from_bot else conv.user.to_user()
    data: dict[str, Any] = {
        "message_id": msg.message_id,
        "from": sender,
        "chat": conv.user.to_chat(),
        "date": msg.date,
    }
    if msg.text is not None:
        data["text"] = msg.text
        if msg.entities:
            data["entities"] = msg.entities
    if msg.caption is not None:
        data["caption"] = msg.caption
        if msg.caption_entities:
            data["caption_entities"] = msg.caption_entities
    if msg.document is not None:
        data["document"] = document_to_api(msg.document)
    if msg.photo is not None:
        data["photo"] = photo_to_api(msg.photo)
    if msg.contact is not None:
        data["contact"] = msg.contact
    if msg.edit_date is not None:
        data["edit_date"] = msg.edit_date
    if msg.invoice is not None:
        data["invoice"] = invoice_to_api(msg.invoice)
    if msg.successful_payment is not None:
        data["successful_payment"] = msg.successful_payment
    # Telegram echoes only inline keyboards back in Message objects.
    if msg.reply_markup and "inline_keyboard" in msg.reply_markup:
        data["reply_markup"] = {"inline_keyboard": msg.inline_keyboard}
    if not nested and msg.reply_to_message_id is not None:
        replied = conv.messages.get(msg.reply_to_message_id)
        if replied is not None and not replied.deleted:
            data["reply_to_message"] = message_to_api(conv, replied, nested=True)
    return data


def message_to_view(msg: ChatMessage, *, files_url: str) -> dict[str, Any]:
    """A message as the user's Telegram app shows it (edits applied, keyboards included)."""
    view: dict[str, Any] = {
        "message_id": msg.message_id,
        "from": "bot" if msg.from_bot else "user",
        "date": msg.date,
        "text": msg.text,
        "entities": msg.entities,
        "caption": msg.caption,
        "caption_entities": msg.caption_entities,
        "edited": msg.edit_date is not None,
        "edit_date": msg.edit_date,
        "reply_markup": msg.reply_markup,
        "inline_keyboard": msg.inline_keyboard,
        "reply_to_message_id": msg.reply_to_message_id,
        "document": None,
        "photo": None,
        "contact": msg.contact,
        "invoice": None
        if msg.invoice is None
        else {
            **invoice_to_api(msg.invoice),
            "prices": msg.invoice["prices"],
            "state": msg.invoice["state"],
            "receipt_message_id": msg.invoice.get("receipt_message_id"),
        },
        "successful_payment": msg.successful_payment,
    }
    for kind in ("document", "photo"):
        stored: StoredFile | None = getattr(msg, kind)
        if stored is not None:
            view[kind] = {
                "file_id": stored.file_id,
                "file_name": stored.file_name,
                "mime_type": stored.mime_type,
                "file_size": len(stored.data),
                "download_url": f"{files_url}/{stored.file_id}",
            }
    if msg.photo is not None:
        view["photo"] |= {
            "width": msg.photo.width,
            "height": msg.photo.height,
            "sizes": photo_to_api(msg.photo),
        }
    return view


def reply_keyboard_of(conv: Conversation) -> dict[str, Any] | None:
    """The reply keyboard the user currently sees under the input field, if any.

    A keyboard stays until the bot removes or replaces it; a ``one_time_keyboard`` hides after the
    user sends the next message.
    """
    current: dict[str, Any] | None = None
    for msg in sorted(conv.messages.values(), key=lambda m: m.message_id):
        markup = msg.reply_markup or {}
        if msg.from_bot:
            if "keyboard" in markup:
                current = markup
            elif markup.get("remove_keyboard"):
                current = None
        elif current is not None and current.get("one_time_keyboard"):
            current = None
    return current


def conversation_view(conv: Conversation, *, files_url: str) -> dict[str, Any]:
    """The whole chat as the user sees it, plus the version to wait on for changes."""
    return {
        "bot_id": conv.bot.id,
        "bot_username": conv.bot.username,
        "user_id": conv.user.id,
        "version": conv.signal.version,
        "blocked": conv.blocked,
        "read_up_to": conv.read_up_to,
        "messages": [message_to_view(m, files_url=files_url) for m in conv.visible()],
        "reply_keyboard": reply_keyboard_of(conv),
        "chat_actions": conv.chat_actions[-10:],
        "callback_answers": conv.callback_answers[-10:],
    }
