"""In-memory records of the emulated Telegram world: bots, users, chats, messages, files."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
        "inline_query",
        "chosen_inline_result",
        "pre_checkout_query",
        "shipping_query",
        "poll",
        "poll_answer",
        "chat_join_request",
    }
)


class Signal:
    """A version counter that coroutines can wait on (used for chats and update queues)."""

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def bump(self) -> int:
        """Record a change and wake every waiter."""
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()
        return self.version

    async def wait_past(self, version: int, timeout: float) -> bool:
        """Wait until the version exceeds ``version``; ``False`` on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while self.version <= version:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return self.version > version
        return True


@dataclass
class WebhookConfig:
    """What ``setWebhook`` stored, plus delivery health for ``getWebhookInfo``."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class BotAccount:
    """A bot registered in the emulator; ``id`` is the numeric prefix of its token."""

    id: int
    token: str
    username: str
    first_name: str
    can_join_groups: bool = True
    can_read_all_group_messages: bool = False
    supports_inline_queries: bool = False
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    menu_buttons: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    texts: dict[tuple[str, str], str] = field(default_factory=dict)
    webhook: WebhookConfig | None = None
    allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    recent: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    next_update_id: int = 1
    update_signal: Signal = field(default_factory=Signal)
    poll_generation: int = 0
    faults: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    # What the emulator answers, per language code ("" for any other), while nobody runs the bot.
    idle_reply: dict[str, str] | None = None
    # update_id of the newest update a bot has fetched (getUpdates or its webhook).
    fetched_up_to: int = 0
    # Some program has run the bot (getUpdates or setWebhook): a sold demo bot that is down for a
    # moment (a redeploy) stays silent like a real bot instead of saying it is not sold.
    has_run: bool = False

    def to_user(self) -> dict[str, Any]:
        """The bot as a Telegram ``User`` object."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }


@dataclass
class UserAccount:
    """A human Telegram user driven through the control API."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    phone_number: str | None = None

    def to_user(self) -> dict[str, Any]:
        """The user as a Telegram ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    def to_chat(self) -> dict[str, Any]:
        """The private chat with this user as a Telegram ``Chat`` object."""
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class StoredFile:
    """A file a bot uploaded or a user sent; read back by ``file_id``.

    As in Telegram, a ``file_id`` belongs to one bot (``bot_id``; ``None`` for files saved by an
    older emulator, usable by any): another bot using it gets "wrong file identifier". A photo
    (``kind == "photo"``) is its largest size (``width`` x ``height``) plus the smaller ``sizes``
    (``file_id``, ``file_unique_id``, ``width``, ``height``), each with its own ``file_id`` and all
    keeping the original bytes.
    """

    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str
    mime_type: str
    file_path: str
    kind: str = "document"
    bot_id: int | None = None
    width: int | None = None
    height: int | None = None
    sizes: list[dict[str, Any]] = field(default_factory=list)

    def usable_by(self, bot_id: int) -> bool:
        """Whether this bot may use the ``file_id`` (its own files only, as in Telegram)."""
        return self.bot_id is None or self.bot_id == bot_id

    def to_file(self, file_id: str | None = None) -> dict[str, Any]:
        """A Telegram ``File`` object (for ``getFile``), for this file or one of its sizes."""
        size = next((s for s in self.sizes if s["file_id"] == file_id), None)
        return {
            "file_id": self.file_id if size is None else size["file_id"],
            "file_unique_id": self.file_unique_id if size is None else size["file_unique_id"],
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class ChatMessage:
    """One message in a private chat; ``from_bot`` tells who wrote it."""

    message_id: int
    from_bot: bool
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    document: StoredFile | None = None
    photo: StoredFile | None = None
    contact: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    deleted: bool = False
    # payments: an invoice the bot sent (with its state: open, paid), a payment the user made
    invoice: dict[str, Any] | None = None
    successful_payment: dict[str, Any] | None = None

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        """Rows of inline buttons attached to the message (empty when none)."""
        markup = self.reply_markup or {}
        return list(markup.get("inline_keyboard") or [])


@dataclass
class CallbackQueryRecord:
    """A press of an inline button and the bot's answer to it, once given."""

    id: str
    bot_id: int
    user_id: int
    message_id: int
    data: str
    created: float = field(default_factory=time.monotonic)
    answered: bool = False
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    """The private chat between one bot and one user."""

    bot: BotAccount
    user: UserAccount
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    next_message_id: int = 1
    blocked: bool = False
    started: bool = False
    read_up_to: int = 0  # the newest message id the user has seen
    chat_actions: list[dict[str, Any]] = field(default_factory=list)
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    signal: Signal = field(default_factory=Signal)

    def new_message_id(self) -> int:
        """Message ids are per chat and shared by both sides, as in Telegram."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def visible(self) -> list[ChatMessage]:
        """Messages not deleted, oldest first."""
        return [m for m in self.messages.values() if not m.deleted]

    def unread(self) -> int:
        """The bot's messages past what the user has read (what a chat list's badge counts)."""
        return sum(
            1
            for m in self.messages.values()
            if m.from_bot and not m.deleted and m.message_id > self.read_up_to
        )
