"""The heartbeat: a Redis key with a TTL that says "this tenant bot is alive, ready and healthy".

The deploy worker waits for ``t:<slug>:heartbeat`` after starting a bot, and the reconciler treats a
key missing two passes in a row as a dead bot and redeploys it. The key is written only once the bot
is ready (database and Redis reachable, ``getMe`` answered, updates flowing), refreshed every
``interval`` seconds well within its TTL, and deleted on a clean shutdown so a stopped bot stops
looking alive at once.

Its value is a small JSON document: when and by which process it was written, plus the bot's health
(:func:`tenant_bot.health.snapshot`: healthy or not, which loops are failing or stuck, loop restarts,
messages set aside). While the bot is unhealthy the key is no longer refreshed: its value is updated
to say why but keeps its TTL (``SET ... XX KEEPTTL``), so it expires and the reconciler heals the
bot by redeploying it; ``python -m tenant_bot --check-health`` (a container health check) reads the
same value. Once healthy again, the key is refreshed as before.

With a ``heartbeat_file`` (the contract's ``BOTFLEET_TENANT_HEARTBEAT_FILE``; the docker runtime sets
one on the container's tmpfs) the file is touched after each healthy write that Redis accepted and
removed while the bot is unhealthy and on shutdown, so its age says what the key's TTL says: the
container's health check is then a shell test of that age
(:func:`deploy_worker.runtimes.docker.health_check_command`), no interpreter per
check (a hundred ``python -m tenant_bot --check-health`` every 30 s cost over a core of a 2-core
host). A loop that stops beating, an event loop that blocks, Redis refusing the write: the file ages
past the TTL and ``docker ps`` shows the container unhealthy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 10.0

HealthProbe = Callable[[], Mapping[str, Any]]


class Heartbeat:
    """Writes the heartbeat key while the bot runs, and lets it lapse while the bot is unhealthy."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: str,
        ttl_seconds: int,
        clock: Callable[[], datetime],
        interval: float = HEARTBEAT_INTERVAL_SECONDS,
        details: dict[str, object] | None = None,
        health: HealthProbe | None = None,
        file: str | None = None,
    ) -> None:
        self.redis = redis
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.interval = min(interval, ttl_seconds / 3)
        self.details = details or {}
        self.health = health
        self.file = Path(file) if file else None
        self.file_errors = 0
        self.beats = 0
        self.healthy = True

    async def beat(self) -> bool:
        """Write the key once: refreshed while healthy, left to expire otherwise. Returns whether
        the bot is healthy (raises ``RedisError`` if Redis refuses)."""
        health = dict(self.health()) if self.health is not None else {"healthy": True}
        healthy = bool(health.get("healthy", True))
        value = json.dumps(
            {"at": self.clock().isoformat(), "pid": os.getpid(), **self.details, **health},
            default=str,
        )
        if healthy:
            await self.redis.set(self.key, value, ex=self.ttl_seconds)
            self.beats += 1
            await self._file(touch=True)
        else:
            await self._file(touch=False)
            await self.redis.set(self.key, value, xx=True, keepttl=True)
        self._note(healthy, health)
        return healthy

    async def _file(self, *, touch: bool) -> None:
        """Touch (healthy) or remove the heartbeat file; a failure is logged and counted (the file
        then ages and the container's health check says unhealthy, which is the truth: the bot
        cannot show it is alive)."""
        if self.file is None:
            return
        try:
            await asyncio.to_thread(_touch if touch else _remove, self.file)
        except OSError as exc:
            self.file_errors += 1
            log.warning("heartbeat file not written", extra={"error": exc.strerror or str(exc)})

    def _note(self, healthy: bool, health: Mapping[str, Any]) -> None:
        """Log each change of health once (not every beat)."""
        if healthy == self.healthy:
            return
        self.healthy = healthy
        if healthy:
            log.info("tenant bot healthy again; heartbeat refreshed")
        else:
            log.error(
                "tenant bot unhealthy; heartbeat left to expire",
                extra={"unhealthy": health.get("unhealthy")},
            )

    async def run(self, *, beat: Callable[[], None] | None = None) -> None:
        """Beat every ``interval`` seconds until cancelled; a failed write is logged and retried.
        ``beat`` tells the supervisor this loop itself is alive."""
        while True:
            if beat is not None:
                beat()
            try:
                await self.beat()
            except RedisError as exc:
                log.warning("heartbeat failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.interval)

    async def clear(self) -> None:
        """Delete the key and the file (on a clean shutdown); errors are logged, never raised."""
        await self._file(touch=False)
        try:
            await self.redis.delete(self.key)
        except RedisError as exc:
            log.warning("heartbeat clear failed", extra={"error": type(exc).__name__})


def _touch(path: Path) -> None:
    path.touch()  # an existing file: its times set to now


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
