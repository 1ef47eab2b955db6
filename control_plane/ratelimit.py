"""Per-API-key rate limiting in Redis, with the ``limits`` package (sliding window counter).

Counters live under ``bf:ratelimit:`` and are shared by every API process. A request normally costs one
Redis round trip. For high rates only, a process takes hits in small batches (``cost=n`` on the shared
counter) and spends them locally for up to a second: a batch is at most 1% of a second's allowance, so
the limit stays exact to within that, and an unused batch only ever makes the limit stricter. At
ordinary admin rates (600/minute) the batch is 1: every request is counted in Redis.

When Redis cannot be reached
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

    _MAX_IDENTITIES = 10_000

    def __init__(
        self,
        *,
        redis: Redis,
        rate: str,
        batch_fraction: float = 0.01,
        max_batch: int = 100,
        batch_ttl_s: float = 1.0,
    ) -> None:
        self._item: RateLimitItem = parse(rate)
        per_second = self._item.amount / self._item.get_expiry()
        self.batch = int(max(1, min(max_batch, per_second * batch_fraction)))
        self._batch_ttl_s = batch_ttl_s
        self._credits: dict[str, tuple[int, float]] = {}
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
        now = time.monotonic()
        if self.batch > 1:
            credit, expires = self._credits.get(identity, (0, 0.0))
            if credit > 0 and expires > now:
                self._credits[identity] = (credit - 1, expires)
                return RateDecision(allowed=True)
        try:
            if self.batch > 1 and await self._limiter.hit(self._item, identity, cost=self.batch):
                if len(self._credits) >= self._MAX_IDENTITIES:
                    self._credits.clear()
                self._credits[identity] = (self.batch - 1, now + self._batch_ttl_s)
                return RateDecision(allowed=True)
            if await self._limiter.hit(self._item, identity):
                return RateDecision(allowed=True)
            stats = await self._limiter.get_window_stats(self._item, identity)
        except (StorageError, RedisError, OSError) as exc:
            log.warning("rate limiter unavailable; request allowed", extra={"error": str(exc)})
            return RateDecision(allowed=True)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed=False, retry_after_s=retry_after)
