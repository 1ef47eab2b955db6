"""The emulated Telegram world: bots, users and their chats, and everything users can do.

:class:`TelegramWorld` is the single owner of the emulator's state. Bot API method handlers and the
control API both go through it; it queues updates for bots and bumps per-chat versions so that
waiters (long polling, "wait until the bot answered") wake up.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.telegram.errors import (
    BotAPIError,
    ControlError,
    bad_request,
    bot_blocked,
    cannot_initiate,
    unauthorized,
)
from sandbox.telegram.formatting import automatic_entities, utf16_len
from sandbox.telegram.idle import IdleReplies
from sandbox.telegram.images import MAX_PHOTO_BYTES, ImageInfo, read_image
from sandbox.telegram.models import (
    BotAccount,
    CallbackQueryRecord,
    ChatMessage,
    Conversation,
    Signal,
    StoredFile,
    UserAccount,
)
from sandbox.telegram.params import Upload
from sandbox.telegram.payments import PaymentDesk
from sandbox.telegram.ratelimit import FloodBuckets, RateLimits
from sandbox.telegram.render import message_to_api, reply_keyboard_of

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"^(\d{1,15}):([A-Za-z0-9_-]{8,})$")
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# Updates kept per bot for a delivery again (POST /sandbox/bots/{id}/updates/{update_id}/again).
RECENT_UPDATES = 500
# A user's caption: Telegram Premium's limit (1024 without Premium; a bot's captions: 1024).
MAX_USER_CAPTION = 4096
# What ``PATCH /sandbox/users/{id}`` may change.
USER_FIELDS = ("first_name", "last_name", "username", "language_code", "phone_number")


@dataclass
class EmulatorConfig:
    """Tunables of the emulator; the defaults behave like Telegram."""

    rate_limits: RateLimits = field(default_factory=RateLimits)
    webhook_retry_initial: float = 1.0
    webhook_retry_max: float = 60.0
    webhook_timeout: float = 10.0
    callback_query_ttl: float = 900.0
    # An idle reply (a bot registered with ``idle_reply``) is sent when a user's message is still
    # unfetched this long after it was sent: nobody runs the bot.
    idle_reply_after: float = 2.0
    # Messages kept per chat (older ones are forgotten when the emulator saves to a directory).
    history_limit: int = 1000
    # A bot must answer a pre_checkout_query within this many seconds or the payment fails.
    pre_checkout_timeout: float = 10.0


def mask_token(token: str) -> str:
    """A token safe to log: the bot id only."""
    return token.split(":", 1)[0] + ":***"


class TelegramWorld:
    """All bots, users, chats and files of one emulator instance."""

    def __init__(self, *, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.limiter = FloodBuckets(self.config.rate_limits)
        self.bots: dict[int, BotAccount] = {}
        self.users: dict[int, UserAccount] = {}
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self.files: dict[str, StoredFile] = {}
        self.photo_sizes: dict[str, StoredFile] = {}  # a smaller size's file_id -> its photo
        self.callbacks: dict[str, CallbackQueryRecord] = {}
        self.changes = Signal()
        self._next_user_id = 100_000_001
        self._next_file = 1
        self.idle = IdleReplies(self)
        self.payments = PaymentDesk(self)

    # ----- registry -------------------------------------------------------------------------

    def register_bot(
        self,
        *,
        token: str,
        username: str,
        first_name: str | None = None,
        idle_reply: dict[str, str] | None = None,
    ) -> BotAccount:
        """Create a bot, or return it when the same token is registered again.

        ``idle_reply`` (text per language code, ``""`` for any other) is what the emulator answers
        a user's message with while nobody runs the bot (a demo bot not sold yet); given again for
        a registered bot, it replaces the old one."""
        if idle_reply is not None and (
            not idle_reply
            or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in idle_reply.items()
            )
        ):
            raise ControlError(400, "idle_reply must map language codes to non-empty texts")
        match = _TOKEN.match(token or "")
        if match is None:
            raise ControlError(400, "token must look like '<digits>:<at least 8 of A-Za-z0-9_->'")
        if not _USERNAME.match(username or "") or not username.lower().endswith("bot"):
            raise ControlError(400, "username must be 5-32 of A-Za-z0-9_ and end with 'bot'")
        bot_id = int(match.group(1))
        existing = self.bots.get(bot_id)
        if existing is not None:
            if existing.token != token:
                raise ControlError(409, f"bot id {bot_id} is already registered with another token")
            if idle_reply is not None:
                existing.idle_reply = dict(idle_reply)
            return existing
        if any(b.username.lower() == username.lower() for b in self.bots.values()):
            raise ControlError(409, f"username @{username} is taken")
        bot = BotAccount(
            id=bot_id,
            token=token,
            username=username,
            first_name=first_name or username,
            idle_reply=None if idle_reply is None else dict(idle_reply),
        )
        self.bots[bot_id] = bot
        self.changes.bump()
        logger.info("bot registered id=%s username=%s", bot_id, username)
        return bot

    def remove_bot(self, bot_id: int) -> None:
        """Forget a bot, as if its token were revoked: its token now answers 401."""
        bot = self.bot(bot_id)
        del self.bots[bot_id]
        bot.update_signal.bump()
        for key in [k for k in self.conversations if k[0] == bot_id]:
            del self.conversations[key]
        self.changes.bump()

    def bot(self, bot_id: int) -> BotAccount:
        """A bot by id for the control API (404 when unknown)."""
        bot = self.bots.get(bot_id)
        if bot is None:
            raise ControlError(404, f"bot {bot_id} is not registered")
        return bot

    def bot_by_token(self, token: str) -> BotAccount:
        """A bot by token for the Bot API (401 Unauthorized when unknown)."""
        match = _TOKEN.match(token)
        bot = self.bots.get(int(match.group(1))) if match else None
        if bot is None or not secrets.compare_digest(bot.token, token):
            raise unauthorized()
        return bot

    def create_user(
        self,
        *,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        phone_number: str | None = None,
        user_id: int | None = None,
    ) -> UserAccount:
        """Create a Telegram user; ids are assigned from 100000001 up unless given."""
        if not first_name:
            raise ControlError(400, "first_name is required")
        if user_id is None:
            while self._next_user_id in self.users:
                self._next_user_id += 1
            user_id = self._next_user_id
            self._next_user_id += 1
        elif user_id in self.users or user_id <= 0:
            raise ControlError(409, f"user id {user_id} is taken or not positive")
        user = UserAccount(
            id=user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone_number=phone_number,
        )
        self.users[user_id] = user
        self.changes.bump()
        return user

    def update_user(self, user: UserAccount, **fields: Any) -> None:
        """Change a user's profile fields (:data:`USER_FIELDS`); ``None`` clears an optional one."""
        for name, value in fields.items():
            if name not in USER_FIELDS:
                raise ControlError(400, f"{name} is not a user field; allowed: {list(USER_FIELDS)}")
            if value is not None and not isinstance(value, str):
                raise ControlError(400, f"{name} must be a string")
            if name == "first_name" and not value:
                raise ControlError(400, "first_name must not be empty")
            if name == "language_code" and value and not _LANGUAGE.match(value):
                raise ControlError(400, "language_code must be an IETF language tag such as 'ru'")
        for name, value in fields.items():
            setattr(user, name, value or None)
        self.changes.bump()

    def user(self, user_id: int) -> UserAccount:
        """A user by id for the control API (404 when unknown)."""
        user = self.users.get(user_id)
        if user is None:
            raise ControlError(404, f"user {user_id} does not exist")
        return user

    def conversation(self, bot: BotAccount, user: UserAccount) -> Conversation:
        """The chat between a bot and a user, created on first use."""
        key = (bot.id, user.id)
        conv = self.conversations.get(key)
        if conv is None:
            conv = Conversation(bot=bot, user=user)
            self.conversations[key] = conv
        return conv

    def chat_for_bot(self, bot: BotAccount, chat_id: int | str, *, sending: bool) -> Conversation:
        """The chat a Bot API call addresses, with Telegram's errors for the wrong ones."""
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            found = next(
                (u for u in self.users.values() if (u.username or "").lower() == name), None
            )
            if found is None:
                raise bad_request("chat not found")
            chat_id = found.id
        user = self.users.get(chat_id)
        conv = self.conversations.get((bot.id, chat_id))
        if user is None:
            raise bad_request("chat not found")
        if conv is None or not conv.started:
            if sending:
                raise cannot_initiate()
            raise bad_request("chat not found")
        if sending and conv.blocked:
            raise bot_blocked()
        return conv

    # ----- updates and change notification --------------------------------------------------

    def enqueue(self, bot: BotAccount, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update for a bot (dropped when the bot did not ask for this kind).

        Returns its ``update_id``, or None when it was dropped."""
        if kind not in bot.allowed_updates:
            return None
        update_id = bot.next_update_id
        bot.updates.append({"update_id": update_id, kind: payload})
        bot.recent[update_id] = (kind, payload)
        while len(bot.recent) > RECENT_UPDATES:
            del bot.recent[next(iter(bot.recent))]
        bot.next_update_id += 1
        bot.update_signal.bump()
        return update_id

    def deliver_again(self, bot: BotAccount, update_id: int) -> int:
        """Deliver a recent update once more (as Telegram does when a bot did not confirm it, or
        after a crash between handling and confirming); returns the new ``update_id``."""
        found = bot.recent.get(update_id)
        if found is None:
            raise ControlError(404, f"update {update_id} is not among the bot's recent updates")
        again = self.enqueue(bot, *found)
        if again is None:
            raise ControlError(409, "the bot no longer receives this kind of update")
        return again

    def mark_run(self, bot: BotAccount) -> None:
        """A program runs this bot (getUpdates or setWebhook): no more idle replies, saved."""
        if not bot.has_run:
            bot.has_run = True
            self.changes.bump()

    def fetched(self, bot: BotAccount, updates: list[dict[str, Any]]) -> None:
        """The bot has received these updates (by getUpdates or its webhook)."""
        if updates:
            bot.fetched_up_to = max(bot.fetched_up_to, updates[-1]["update_id"])

    def close(self) -> None:
        """Cancel pending idle replies (the emulator is stopping)."""
        self.idle.cancel_all()

    def touch(self, conv: Conversation) -> None:
        """Record a visible change in a chat and wake its waiters."""
        conv.signal.bump()
        self.changes.bump()

    def bot_changed(self, bot: BotAccount) -> None:
        """Record a change of a bot's profile (name, commands) that the page shows."""
        self.changes.bump()

    def trim(self, conv: Conversation, limit: int) -> None:
        """Forget all but the newest ``limit`` messages of a chat (deleted ones first)."""
        if len(conv.messages) <= limit:
            return
        for message_id in [m for m, msg in conv.messages.items() if msg.deleted]:
            del conv.messages[message_id]
        for message_id in sorted(conv.messages)[:-limit]:
            del conv.messages[message_id]

    def counters(self) -> tuple[int, int]:
        """The next user id and file number to hand out (what a saved world must keep)."""
        return self._next_user_id, self._next_file

    def restore_counters(self, *, next_user_id: int, next_file: int) -> None:
        """Continue numbering users and files where a saved world left off."""
        self._next_user_id = max(self._next_user_id, next_user_id)
        self._next_file = max(self._next_file, next_file)

    def mark_read(self, conv: Conversation, message_id: int) -> None:
        """The user has seen the chat up to ``message_id`` (the page shows it)."""
        if message_id > conv.read_up_to:
            conv.read_up_to = min(message_id, conv.next_message_id - 1)
            self.touch(conv)

    def now(self) -> int:
        """Unix time as Telegram stamps messages."""
        return int(time.time())

    def store_file(self, upload: Upload, *, kind: str, bot_id: int | None) -> StoredFile:
        """Keep an uploaded file and give it Telegram-like identifiers, owned by ``bot_id``."""
        number = self._next_file
        self._next_file += 1
        unique = secrets.token_urlsafe(12)
        suffix = upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else "bin"
        stored = StoredFile(
            file_id=f"{kind[:3].upper()}{number}_{unique}",
            file_unique_id=unique[:16],
            data=upload.data,
            file_name=upload.filename,
            mime_type=upload.content_type or "application/octet-stream",
            file_path=f"{kind}s/file_{number}.{suffix}",
            kind=kind,
            bot_id=bot_id,
        )
        self.add_file(stored)
        return stored

    def store_photo(self, data: bytes, *, bot_id: int, filename: str | None = None) -> StoredFile:
        """Keep a photo as Telegram does: decoded, in several sizes, owned by ``bot_id``.

        Raises ``ValueError`` with Telegram's error (``PHOTO_SAVE_FILE_INVALID`` over 10 MB,
        ``IMAGE_PROCESS_FAILED`` for what is not an image, ``PHOTO_INVALID_DIMENSIONS``)."""
        info = photo_info(data)
        sizes = info.sizes()
        stored = self.store_file(
            Upload(data, filename or f"photo.{info.suffix}", info.mime_type),
            kind="photo",
            bot_id=bot_id,
        )
        stored.width, stored.height = sizes[-1]
        for index, (width, height) in enumerate(sizes[:-1]):
            unique = secrets.token_urlsafe(12)
            stored.sizes.append(
                {
                    "file_id": f"{stored.file_id}_{index}",
                    "file_unique_id": unique[:16],
                    "width": width,
                    "height": height,
                }
            )
        self.add_file(stored)
        return stored

    def add_file(self, stored: StoredFile) -> None:
        """Index a file (and each size of a photo) by ``file_id``."""
        self.files[stored.file_id] = stored
        for size in stored.sizes:
            self.photo_sizes[size["file_id"]] = stored

    def find_file(self, file_id: str) -> StoredFile | None:
        """A file by any of its ``file_id``s (a photo's smaller sizes included)."""
        return self.files.get(file_id) or self.photo_sizes.get(file_id)

    # ----- what users do --------------------------------------------------------------------

    def _user_message(self, conv: Conversation, **fields: Any) -> ChatMessage:
        if conv.blocked:  # writing to a blocked bot means pressing "Restart", which unblocks it
            self.set_blocked(conv, blocked=False)
        msg = ChatMessage(
            message_id=conv.new_message_id(), from_bot=False, date=self.now(), **fields
        )
        conv.messages[msg.message_id] = msg
        conv.started = True
        self.touch(conv)
        update_id = self.enqueue(conv.bot, "message", message_to_api(conv, msg))
        if update_id is not None:
            self.idle.arm(conv, update_id)
        return msg

    def user_sends_text(
        self, conv: Conversation, text: str, *, reply_to_message_id: int | None = None
    ) -> ChatMessage:
        """The user types and sends ``text`` (commands get ``bot_command`` entities)."""
        if not text or not text.strip():
            raise ControlError(400, "text must not be empty")
        if len(text) > 4096:
            raise ControlError(400, "text is longer than 4096 characters")
        if reply_to_message_id is not None and reply_to_message_id not in conv.messages:
            raise ControlError(404, f"message {reply_to_message_id} is not in this chat")
        return self._user_message(
            conv,
            text=text,
            entities=automatic_entities(text),
            reply_to_message_id=reply_to_message_id,
        )

    def user_sends_photo(
        self,
        conv: Conversation,
        data: bytes,
        *,
        caption: str | None = None,
        caption_entities: list[dict[str, Any]] | None = None,
        filename: str | None = None,
    ) -> ChatMessage:
        """The user sends a photo, with an optional caption; the bot gets ``message.photo``.

        The caption may hold up to 4096 characters, as a Telegram Premium user's may (1024
        without Premium), so bots meet captions longer than they may send themselves."""
        if caption is not None and not caption.strip():
            caption = None
        if caption is not None and utf16_len(caption) > MAX_USER_CAPTION:
            raise ControlError(400, f"caption is longer than {MAX_USER_CAPTION} characters")
        entities = automatic_entities(caption) if caption else []
        if caption_entities:
            if caption is None:
                raise ControlError(400, "caption_entities need a caption")
            entities = check_entities(caption, caption_entities)
        try:  # checked first, so a refused photo leaves nothing stored
            stored = self.store_photo(data, bot_id=conv.bot.id, filename=filename)
        except ValueError as exc:
            raise ControlError(400, f"the photo is refused: {exc}") from None
        return self._user_message(conv, photo=stored, caption=caption, caption_entities=entities)

    def user_shares_contact(
        self, conv: Conversation, *, phone_number: str | None = None
    ) -> ChatMessage:
        """The user shares their own contact (the ``request_contact`` button)."""
        phone = phone_number or conv.user.phone_number
        if not phone:
            raise ControlError(400, "the user has no phone_number; pass one")
        contact: dict[str, Any] = {
            "phone_number": phone,
            "first_name": conv.user.first_name,
            "user_id": conv.user.id,
        }
        if conv.user.last_name:
            contact["last_name"] = conv.user.last_name
        return self._user_message(conv, contact=contact)

    def user_presses_reply_button(self, conv: Conversation, text: str) -> ChatMessage:
        """The user taps a button of the current reply keyboard."""
        keyboard = reply_keyboard_of(conv)
        if keyboard is None:
            raise ControlError(409, "the chat shows no reply keyboard")
        for row in keyboard.get("keyboard") or []:
            for button in row:
                label = button if isinstance(button, str) else button.get("text")
                if label != text:
                    continue
                if isinstance(button, dict) and button.get("request_contact"):
                    return self.user_shares_contact(conv)
                return self.user_sends_text(conv, text)
        labels = [
            b if isinstance(b, str) else b.get("text") for r in keyboard["keyboard"] for b in r
        ]
        raise ControlError(404, f"no reply button {text!r}; the keyboard has {labels}")

    def user_presses_inline_button(
        self,
        conv: Conversation,
        *,
        message_id: int | None = None,
        data: str | None = None,
        text: str | None = None,
        forged: bool = False,
    ) -> CallbackQueryRecord:
        """The user taps an inline button, found by callback data or label.

        Without ``message_id`` the newest message that has a matching button is used. ``forged``
        sends ``data`` from the newest message with buttons (or ``message_id``) whether or not a
        button carries it: a modified client, or a button of an older bot version.
        """
        if data is None and text is None:
            raise ControlError(400, "give the button's callback data or its text")
        candidates = sorted(conv.visible(), key=lambda m: m.message_id, reverse=True)
        if message_id is not None:
            candidates = [m for m in candidates if m.message_id == message_id]
            if not candidates:
                raise ControlError(404, f"message {message_id} is not in this chat")
        if forged and data is not None:
            with_buttons = [m for m in candidates if m.inline_keyboard]
            if not with_buttons:
                raise ControlError(404, "no message with inline buttons to forge a tap on")
            return self._callback(conv, with_buttons[0], data)
        for msg in candidates:
            for row in msg.inline_keyboard:
                for button in row:
                    if data is not None and button.get("callback_data") != data:
                        continue
                    if text is not None and button.get("text") != text:
                        continue
                    if "callback_data" not in button:
                        raise ControlError(409, f"button {button.get('text')!r} has no callback")
                    return self._callback(conv, msg, button["callback_data"])
        shown = [b.get("text") for m in candidates for r in m.inline_keyboard for b in r]
        wanted = f"data={data!r}" if data is not None else f"text={text!r}"
        raise ControlError(404, f"no inline button with {wanted}; buttons shown: {shown}")

    def _callback(self, conv: Conversation, msg: ChatMessage, data: str) -> CallbackQueryRecord:
        if conv.blocked:
            raise ControlError(409, "the user blocked this bot; unblock first")
        record = CallbackQueryRecord(
            id=str(secrets.randbits(62)),
            bot_id=conv.bot.id,
            user_id=conv.user.id,
            message_id=msg.message_id,
            data=data,
        )
        self.callbacks[record.id] = record
        self.enqueue(
            conv.bot,
            "callback_query",
            {
                "id": record.id,
                "from": conv.user.to_user(),
                "message": message_to_api(conv, msg),
                "chat_instance": str(conv.bot.id * 7 + conv.user.id),
                "data": data,
            },
        )
        return record

    def set_blocked(self, conv: Conversation, *, blocked: bool) -> None:
        """Block or unblock the bot; the bot gets a ``my_chat_member`` update as in Telegram."""
        if conv.blocked == blocked:
            return
        conv.blocked = blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        bot_user = conv.bot.to_user()
        self.enqueue(
            conv.bot,
            "my_chat_member",
            {
                "chat": conv.user.to_chat(),
                "from": conv.user.to_user(),
                "date": self.now(),
                "old_chat_member": _member(bot_user, old),
                "new_chat_member": _member(bot_user, new),
            },
        )
        self.touch(conv)

    def take_fault(self, bot: BotAccount, method: str) -> BotAPIError | None:
        """Pop an injected error for ``method`` (case-insensitive), if one is queued."""
        queue = bot.faults.get(method.lower()) or bot.faults.get("*")
        if not queue:
            return None
        fault = queue[0]
        fault["count"] -= 1
        if fault["count"] <= 0:
            queue.popleft()
        return BotAPIError(
            fault["error_code"], fault["description"], retry_after=fault.get("retry_after")
        )

    def inject_fault(
        self,
        bot: BotAccount,
        *,
        method: str,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` calls of ``method`` (or ``*``) fail with the given error."""
        fault = {
            "error_code": error_code,
            "description": description,
            "retry_after": retry_after,
            "count": count,
        }
        bot.faults.setdefault(method.lower(), deque()).append(fault)


def _member(user: dict[str, Any], status: str) -> dict[str, Any]:
    data: dict[str, Any] = {"status": status, "user": user}
    if status == "kicked":
        data["until_date"] = 0
    return data


def photo_info(data: bytes) -> ImageInfo:
    """The decoded header of a photo Telegram accepts; ``ValueError`` with Telegram's error."""
    if not data:
        raise ValueError("file must be non-empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise ValueError("PHOTO_SAVE_FILE_INVALID")
    info = read_image(data)
    if info is None:
        raise ValueError("IMAGE_PROCESS_FAILED")
    if not info.dimensions_ok():
        raise ValueError("PHOTO_INVALID_DIMENSIONS")
    return info


def check_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Entities a user's client attached: each a ``type`` with an ``offset``/``length`` inside
    ``text`` (in UTF-16 units, as Telegram counts)."""
    if not isinstance(entities, list):
        raise ControlError(400, "caption_entities must be a list of MessageEntity objects")
    size = utf16_len(text)
    checked = []
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
            raise ControlError(400, "each entity needs a type, an offset and a length")
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            raise ControlError(400, "an entity's offset and length must be integers")
        if offset < 0 or length <= 0 or offset + length > size:
            raise ControlError(400, f"entity {entity} lies outside the caption")
        checked.append(dict(entity))
    return checked
