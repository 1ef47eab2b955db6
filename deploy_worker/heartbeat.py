"""Waiting for a tenant bot to report ready: its heartbeat key (``t:<slug>:heartbeat``) appears.

The bot writes the key only once it is fully up (database, Redis, ``getMe``, updates flowing). While
waiting, the runtime is asked now and then whether the bot still exists, so a bot that dies at start
fails the step at once instead of after the whole timeout.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from deploy_worker.errors import HeartbeatTimeout, RetryableJobError
from deploy_worker.runtimes.base import InstanceState, Runtime


async def wait_for_heartbeat(
    redis: Redis,
    *,
    key: str,
    slug: str,
    runtime: Runtime,
    timeout: float,
    poll: float = 0.05,
    check_every: float = 1.0,
) -> None:
    """Return once ``key`` exists; raise :class:`HeartbeatTimeout` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + check_every
    while True:
        try:
            if await redis.exists(key):
                return
        except RedisError as exc:
            raise RetryableJobError(
                f"cannot read the heartbeat from Redis: {type(exc).__name__}"
            ) from exc
        now = time.monotonic()
        if now >= deadline:
            status = await runtime.status(slug)
            raise HeartbeatTimeout(
                f"the bot did not report ready within {timeout:g}s (instance {status.state}); "
                f"see `botfleet tenants logs {slug}`"
            )
        if now >= next_check:
            next_check = now + check_every
            status = await runtime.status(slug)
            if status.state in (InstanceState.STOPPED, InstanceState.MISSING):
                raise RetryableJobError(
                    f"the bot exited before reporting ready (exit code {status.exit_code}); "
                    f"see `botfleet tenants logs {slug}`"
                )
        await asyncio.sleep(poll)
