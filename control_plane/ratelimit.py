"""Per-API-key rate limiting in Redis, with the ``limits`` package (sliding window counter).

Counters live under ``bf:ratelimit:`` and are shared by every API process. When Redis cannot be reached
the limiter lets requests through (and says so in the log): readiness already reports Redis, and an
admin API that refuses everything while Redis restarts helps nobody.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "bf:ratelimit"


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    """``rate`` (e.g. ``600/minute``) per identity, counted on the given Redis client's pool."""

    def __init__(self, *, redis: Redis, rate: str) -> None:
        self._item: RateLimitItem = parse(rate)
        # The storage shares the application's connection pool; the URI only picks the driver.
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
            connection_pool=redis.connection_pool,
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    @property
    def rate(self) -> str:
        return str(self._item)

    async def hit(self, identity: str) -> RateDecision:
        """Count one request of ``identity``; say whether it may go on, and if not, for how long
        it should wait."""
        try:
            if await self._limiter.hit(self._item, identity):
                return RateDecision(allowed=True)
            stats = await self._limiter.get_window_stats(self._item, identity)
        except (StorageError, RedisError, OSError) as exc:
            log.warning("rate limiter unavailable; request allowed", extra={"error": str(exc)})
            return RateDecision(allowed=True)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed=False, retry_after_s=retry_after)
