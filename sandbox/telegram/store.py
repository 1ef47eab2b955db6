"""Keeping the emulated Telegram across restarts: users, bots and chat history in a directory.

``botfleet up`` keeps tenants, bookings and bot tokens in its data dir; without this, the emulator
started empty each time and the owner had to recreate their user with the same id to be recognised.
What is kept, under ``<dir>``:

- ``world.json``: users, bots (token, name, commands, menu buttons, descriptions, the next
  ``update_id``), the id counters and the metadata of files that kept messages show;
- ``chats/<bot id>_<user id>.json``: one file per chat, the last ``history_limit`` messages (edits
  applied, deleted ones left out), the next message id, blocked/started and how far the user read;
- ``files/<file_id>``: the bytes of those files.

What is not kept, on purpose: queued updates (a bot that had not fetched them before the stop would
get stale presses of buttons whose callback queries are gone, so every bot starts with an empty
queue, while ``update_id`` keeps counting up from where it was: a bot's saved offset never skips a new
update nor sees an old one again), webhooks (a bot sets its webhook again when it starts), callback
queries, chat actions, faults and flood-limit usage.

Every file is written whole to a temporary name and renamed over the old one, so a crash leaves the
old or the new version, never half of one. Saving runs in the background: after a change, the state
is copied on the event loop (only the chats that changed since the last save) and written in a
thread. :meth:`WorldStore.close` writes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.telegram.models import (
    BotAccount,
    ChatMessage,
    Conversation,
    StoredFile,
    UserAccount,
)
from sandbox.telegram.world import TelegramWorld

logger = logging.getLogger(__name__)

FORMAT = 1
# Changes arriving together (a bot's reply of three messages) are written together.
SAVE_DELAY_S = 0.3


class StoreError(Exception):
    """The directory holds something this emulator cannot read back."""


@dataclass
class _Snapshot:
    """What one save writes: path -> bytes, and chat files to remove."""

    writes: dict[Path, bytes] = field(default_factory=dict)
    removals: list[Path] = field(default_factory=list)
    files: set[str] = field(default_factory=set)  # ids of the files kept after this save


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, rename it over."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _apply(snapshot: _Snapshot) -> None:
    for path, data in snapshot.writes.items():
        _write_atomically(path, data)
    for path in snapshot.removals:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# ----- to JSON ----------------------------------------------------------------------------------


def _bot_to_json(bot: BotAccount) -> dict[str, Any]:
    return {
        "id": bot.id,
        "token": bot.token,
        "username": bot.username,
        "first_name": bot.first_name,
        "commands": [[scope, lang, cmds] for (scope, lang), cmds in bot.commands.items()],
        "menu_buttons": [[chat, button] for chat, button in bot.menu_buttons.items()],
        "texts": [[kind, lang, value] for (kind, lang), value in bot.texts.items()],
        "next_update_id": bot.next_update_id,
        "idle_reply": bot.idle_reply,
        "has_run": bot.has_run,
    }


def _user_to_json(user: UserAccount) -> dict[str, Any]:
    return {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "language_code": user.language_code,
        "phone_number": user.phone_number,
    }


def _file_to_json(stored: StoredFile) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": stored.file_name,
        "mime_type": stored.mime_type,
        "file_path": stored.file_path,
        "kind": stored.kind,
        "bot_id": stored.bot_id,
        "width": stored.width,
        "height": stored.height,
        "sizes": stored.sizes,
    }


def _message_to_json(msg: ChatMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "message_id": msg.message_id,
        "from_bot": msg.from_bot,
        "date": msg.date,
    }
    for key in (
        "text",
        "caption",
        "reply_markup",
        "contact",
        "reply_to_message_id",
        "edit_date",
        "invoice",
        "successful_payment",
    ):
        value = getattr(msg, key)
        if value is not None:
            data[key] = value
    if msg.entities:
        data["entities"] = msg.entities
    if msg.caption_entities:
        data["caption_entities"] = msg.caption_entities
    if msg.document is not None:
        data["document"] = msg.document.file_id
    if msg.photo is not None:
        data["photo"] = msg.photo.file_id
    return data


def _chat_to_json(conv: Conversation, *, limit: int) -> dict[str, Any]:
    return {
        "bot_id": conv.bot.id,
        "user_id": conv.user.id,
        "next_message_id": conv.next_message_id,
        "blocked": conv.blocked,
        "started": conv.started,
        "read_up_to": conv.read_up_to,
        "messages": [_message_to_json(m) for m in conv.visible()[-limit:]],
    }


# ----- from JSON --------------------------------------------------------------------------------


def _bot_from_json(data: dict[str, Any]) -> BotAccount:
    bot = BotAccount(
        id=int(data["id"]),
        token=str(data["token"]),
        username=str(data["username"]),
        first_name=str(data["first_name"]),
        next_update_id=int(data.get("next_update_id", 1)),
        idle_reply=data.get("idle_reply"),
        has_run=bool(data.get("has_run", False)),
    )
    bot.commands = {(scope, lang): cmds for scope, lang, cmds in data.get("commands", [])}
    bot.menu_buttons = {chat: button for chat, button in data.get("menu_buttons", [])}
    bot.texts = {(kind, lang): value for kind, lang, value in data.get("texts", [])}
    return bot


def _message_from_json(data: dict[str, Any], files: dict[str, StoredFile]) -> ChatMessage:
    fields = dict(data)
    for kind in ("document", "photo"):
        if kind in fields:
            # A file whose bytes are gone shows as a message without it rather than failing.
            fields[kind] = files.get(fields[kind])
    return ChatMessage(**fields)


@dataclass
class _Loaded:
    """What was read from disk (in a thread), before it is put into the world (on the loop)."""

    world: dict[str, Any]
    chats: list[dict[str, Any]]
    blobs: dict[str, bytes]


def _read(directory: Path) -> _Loaded | None:
    index = directory / "world.json"
    if not index.exists():
        return None
    try:
        world = json.loads(index.read_bytes())
        if world.get("format") != FORMAT:
            raise StoreError(f"{index}: format {world.get('format')!r}, expected {FORMAT}")
        chats = [json.loads(p.read_bytes()) for p in sorted((directory / "chats").glob("*.json"))]
    except (OSError, ValueError, AttributeError) as exc:
        raise StoreError(f"cannot read the emulator's state in {directory}: {exc}") from exc
    blobs: dict[str, bytes] = {}
    for meta in world.get("files", []):
        path = directory / "files" / meta["file_id"]
        with contextlib.suppress(FileNotFoundError):
            blobs[meta["file_id"]] = path.read_bytes()
    return _Loaded(world=world, chats=chats, blobs=blobs)


class WorldStore:
    """Loads a :class:`TelegramWorld` from ``directory`` and keeps saving it there."""

    def __init__(self, directory: Path, *, history_limit: int = 1000) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self.directory = directory
        self.history_limit = history_limit
        self._saved_chats: dict[tuple[int, int], int] = {}  # chat -> version written
        self._saved_files: set[str] = set()
        self._chat_files: dict[tuple[int, int], tuple[int, dict[str, StoredFile]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.saves = 0

    async def load(self, world: TelegramWorld) -> None:
        """Put what the directory holds into an empty ``world`` (nothing when it is new)."""
        await asyncio.to_thread(self._prepare)
        loaded = await asyncio.to_thread(_read, self.directory)
        if loaded is None:
            return
        try:
            self._restore(world, loaded)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"the emulator's state in {self.directory} is damaged: {exc}") from exc
        logger.info(
            "telegram emulator state loaded users=%d bots=%d chats=%d",
            len(world.users),
            len(world.bots),
            len(world.conversations),
        )

    def _restore(self, world: TelegramWorld, loaded: _Loaded) -> None:
        data = loaded.world
        for raw in data.get("users", []):
            user = UserAccount(**raw)
            world.users[user.id] = user
        for raw in data.get("bots", []):
            bot = _bot_from_json(raw)
            world.bots[bot.id] = bot
        files: dict[str, StoredFile] = {}
        for meta in data.get("files", []):
            blob = loaded.blobs.get(meta["file_id"])
            if blob is not None:
                if "kind" not in meta:  # saved before files had kinds
                    meta["kind"] = (
                        "photo" if meta["file_path"].startswith("photos/") else "document"
                    )
                files[meta["file_id"]] = StoredFile(data=blob, **meta)
        for stored in files.values():
            world.add_file(stored)
        self._saved_files = set(files)
        for chat in loaded.chats:
            bot_found = world.bots.get(chat["bot_id"])
            user_found = world.users.get(chat["user_id"])
            if bot_found is None or user_found is None:
                continue
            conv = Conversation(
                bot=bot_found,
                user=user_found,
                next_message_id=int(chat["next_message_id"]),
                blocked=bool(chat["blocked"]),
                started=bool(chat["started"]),
                read_up_to=int(chat.get("read_up_to", 0)),
            )
            for raw in chat["messages"]:
                msg = _message_from_json(raw, files)
                conv.messages[msg.message_id] = msg
            world.conversations[(bot_found.id, user_found.id)] = conv
            self._saved_chats[(bot_found.id, user_found.id)] = conv.signal.version
        world.restore_counters(
            next_user_id=int(data.get("next_user_id", 0)), next_file=int(data.get("next_file", 0))
        )

    def _prepare(self) -> None:
        for sub in ("", "chats", "files"):
            (self.directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def start(self, world: TelegramWorld) -> None:
        """Save in the background after every change until :meth:`close`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(world), name="sandbox-telegram-store")

    async def close(self, world: TelegramWorld) -> None:
        """Stop saving in the background and write what changed since the last save."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.save(world)

    async def _run(self, world: TelegramWorld) -> None:
        version = world.changes.version
        while True:
            await world.changes.wait_past(version, 3600.0)
            await asyncio.sleep(SAVE_DELAY_S)
            version = world.changes.version
            try:
                await self.save(world)
            except OSError:
                logger.exception("telegram emulator state not saved dir=%s", self.directory)

    async def save(self, world: TelegramWorld) -> None:
        """Write the world index, every chat changed since the last save and new files."""
        async with self._lock:
            snapshot, saved = self._snapshot(world)
            writing = asyncio.ensure_future(asyncio.to_thread(_apply, snapshot))
            try:
                await asyncio.shield(writing)
            except asyncio.CancelledError:
                # A thread cannot be stopped: let it finish before the lock is released, or the
                # next save (the one at close) would race it and an older snapshot could win.
                await writing
                raise
            self._saved_chats = saved
            self._saved_files = snapshot.files
            self.saves += 1

    def _snapshot(self, world: TelegramWorld) -> tuple[_Snapshot, dict[tuple[int, int], int]]:
        snapshot = _Snapshot()
        chats_dir = self.directory / "chats"
        saved: dict[tuple[int, int], int] = {}
        kept_files: dict[str, StoredFile] = {}
        for key, conv in world.conversations.items():
            saved[key] = conv.signal.version
            unchanged = self._saved_chats.get(key) == conv.signal.version
            cached = self._chat_files.get(key)
            if unchanged and cached is not None and cached[0] == conv.signal.version:
                kept_files.update(cached[1])
                continue
            # Only chats that changed are walked, so a save costs what changed, not the history.
            world.trim(conv, self.history_limit)
            files = {
                stored.file_id: stored
                for msg in conv.visible()
                for stored in (msg.document, msg.photo)
                if stored is not None
            }
            self._chat_files[key] = (conv.signal.version, files)
            kept_files.update(files)
            if unchanged:
                continue
            document = _chat_to_json(conv, limit=self.history_limit)
            snapshot.writes[chats_dir / f"{key[0]}_{key[1]}.json"] = _dump(document)
        for key in self._saved_chats.keys() - saved.keys():
            snapshot.removals.append(chats_dir / f"{key[0]}_{key[1]}.json")
            self._chat_files.pop(key, None)
        files_dir = self.directory / "files"
        for file_id, stored in kept_files.items():
            if file_id not in self._saved_files:
                snapshot.writes[files_dir / file_id] = stored.data
        snapshot.removals.extend(files_dir / f for f in self._saved_files - kept_files.keys())
        snapshot.files = set(kept_files)
        next_user_id, next_file = world.counters()
        index = {
            "format": FORMAT,
            "next_user_id": next_user_id,
            "next_file": next_file,
            "users": [_user_to_json(u) for u in world.users.values()],
            "bots": [_bot_to_json(b) for b in world.bots.values()],
            "files": [_file_to_json(f) for f in kept_files.values()],
        }
        snapshot.writes[self.directory / "world.json"] = _dump(index)
        return snapshot, saved
