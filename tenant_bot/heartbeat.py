"""The heartbeat: a Redis key with a TTL that says "this tenant bot is alive and ready".

The deploy worker waits for ``t:<slug>:heartbeat`` after starting a bot, and the reconciler treats a
missing key as a dead bot. The key is written only once the bot is ready (database and Redis reachable,
``getMe`` answered, updates flowing), refreshed every ``interval`` seconds well within its TTL, and
deleted on a clean shutdown so a stopped bot stops looking alive at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 10.0


class Heartbeat:
    """Writes the heartbeat key while the bot runs."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: str,
        ttl_seconds: int,
        clock: Callable[[], datetime],
        interval: float = HEARTBEAT_INTERVAL_SECONDS,
        details: dict[str, object] | None = None,
    ) -> None:
        self.redis = redis
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.interval = min(interval, ttl_seconds / 3)
        self.details = details or {}
        self.beats = 0

    async def beat(self) -> None:
        """Write the key once (raises ``RedisError`` if Redis refuses)."""
        value = json.dumps({"at": self.clock().isoformat(), "pid": os.getpid(), **self.details})
        await self.redis.set(self.key, value, ex=self.ttl_seconds)
        self.beats += 1

    async def run(self) -> None:
        """Beat every ``interval`` seconds until cancelled; a failed beat is logged and retried."""
        while True:
            try:
                await self.beat()
            except RedisError as exc:
                log.warning("heartbeat failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.interval)

    async def clear(self) -> None:
        """Delete the key (on a clean shutdown); errors are logged, never raised."""
        try:
            await self.redis.delete(self.key)
        except RedisError as exc:
            log.warning("heartbeat clear failed", extra={"error": type(exc).__name__})
