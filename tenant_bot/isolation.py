"""Per-chat event isolation: one chat's updates are handled one at a time and in arrival order.

aiogram's ``SimpleEventIsolation`` keeps one lock per chat forever (its own TODO says so), and
``RedisEventIsolation`` polls a Redis lock, which does not keep arrival order. Telegram lets only one
poller (or one webhook) receive a bot's updates, so an in-process lock is enough; ``asyncio.Lock``
wakes waiters first-in first-out, which keeps the order, and the lock is dropped once nobody holds or
waits for it, so memory stays flat however many customers write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey


class ChatEventIsolation(BaseEventIsolation):
    """FIFO lock per FSM key (bot, chat, user) whose entry is removed when unused."""

    def __init__(self) -> None:
        self._locks: dict[StorageKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            held, users = self._locks.get(key, (lock, 0))
            if users <= 1:
                self._locks.pop(key, None)
            else:
                self._locks[key] = (held, users - 1)

    @property
    def active(self) -> int:
        """How many chats have an update in flight (for tests and metrics)."""
        return len(self._locks)

    async def close(self) -> None:
        self._locks.clear()
