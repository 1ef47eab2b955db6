"""Per-API-key rate limiting in Redis, with the ``limits`` package (sliding window counter).

Counters live under ``<installation>:bf:ratelimit:`` (``tenant_:bf:ratelimit:``) and are shared by every API process. A request normally costs one
Redis round trip. For high rates only, a process takes hits in small batches (``cost=n`` on the shared
counter) and spends them locally for up to a second. A batch is at most 1% of a second's allowance, and
as soon as one starts to be spent the next is fetched in the background (one fetch per process and
key; what is left of the old batch moves to the new one), so requests of a busy key do not queue behind
a Redis round trip at every batch boundary (they did: a p99 of tens of ms at a few thousand requests/s).
At most two batches are taken ahead of use, so the limit stays exact to within 2% of a second's
allowance, and an unused batch only ever makes it stricter. A request that finds no credit at all
refills itself while the others in flight wait for its batch (no stampede of batches), and once a batch
is refused (the key is near its limit) every request of that key is counted in Redis one by one for a
second, so the 429s come exactly at the limit. At ordinary admin rates (600/minute) the batch is 1:
every request is counted in Redis, one round trip (one Lua script).

When Redis cannot be reached the limiter lets requests through (and says so in the log): readiness
already reports Redis, and an admin API that refuses everything while Redis restarts helps nobody.
"""

from __future__ import annotations

import asyncio
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

KEY_PREFIX = "tenant_:bf:ratelimit"  # the default installation's; the app passes its own


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
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        """``key_prefix``: where the counters live (the installation's, see
        :func:`fleet.identifiers.platform_redis_key`)."""
        self._item: RateLimitItem = parse(rate)
        per_second = self._item.amount / self._item.get_expiry()
        self.batch = int(max(1, min(max_batch, per_second * batch_fraction)))
        self._batch_ttl_s = batch_ttl_s
        self._credits: dict[str, tuple[int, float]] = {}
        self._refills: dict[str, asyncio.Lock] = {}
        self._exact_until: dict[str, float] = {}
        # Fetch the next batch as soon as one starts to be spent: under load a Redis round trip
        # takes several turns of a busy event loop, and half a batch ran out before it came back.
        self._low_water = self.batch - 1
        self._fetching_ahead: dict[str, asyncio.Task[None]] = {}
        # The storage shares the application's connection pool; the URI only picks the driver.
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            # limits annotates **options as float | str | bool, yet documents connection_pool.
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    @property
    def rate(self) -> str:
        return str(self._item)

    async def hit(self, identity: str) -> RateDecision:
        """Count one request of ``identity``; say whether it may go on, and if not, for how long
        it should wait."""
        if self.batch > 1:
            if self._take_credit(identity):
                return RateDecision(allowed=True)
            if self._exact_until.get(identity, 0.0) <= time.monotonic():
                # One request of this process refills; the others wait for it and spend its
                # batch (without this, every request in flight would take a batch of its own).
                lock = self._refill_lock(identity)
                async with lock:
                    if self._take_credit(identity):
                        return RateDecision(allowed=True)
                    if self._exact_until.get(identity, 0.0) <= time.monotonic():
                        try:
                            refilled = await self._limiter.hit(
                                self._item, identity, cost=self.batch
                            )
                        except (StorageError, RedisError, OSError) as exc:
                            return self._unavailable(exc)
                        now = time.monotonic()
                        if refilled:
                            if len(self._credits) >= self._MAX_IDENTITIES:
                                self._credits.clear()
                            self._credits[identity] = (self.batch - 1, now + self._batch_ttl_s)
                            return RateDecision(allowed=True)
                        # Near the limit: count every request in Redis for a while.
                        if len(self._exact_until) >= self._MAX_IDENTITIES:
                            self._exact_until.clear()
                        self._exact_until[identity] = now + self._batch_ttl_s
        try:
            if await self._limiter.hit(self._item, identity):
                return RateDecision(allowed=True)
            stats = await self._limiter.get_window_stats(self._item, identity)
        except (StorageError, RedisError, OSError) as exc:
            return self._unavailable(exc)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed=False, retry_after_s=retry_after)

    async def peek(self, identity: str) -> RateDecision:
        """Whether one more hit of ``identity`` would be allowed, without counting it."""
        try:
            if await self._limiter.test(self._item, identity):
                return RateDecision(allowed=True)
            stats = await self._limiter.get_window_stats(self._item, identity)
        except (StorageError, RedisError, OSError) as exc:
            return self._unavailable(exc)
        return RateDecision(
            allowed=False, retry_after_s=max(1, math.ceil(stats.reset_time - time.time()))
        )

    def _refill_lock(self, identity: str) -> asyncio.Lock:
        lock = self._refills.get(identity)
        if lock is None:
            if len(self._refills) >= self._MAX_IDENTITIES:
                self._refills.clear()
            lock = self._refills[identity] = asyncio.Lock()
        return lock

    def _take_credit(self, identity: str) -> bool:
        credit, expires = self._credits.get(identity, (0, 0.0))
        if credit > 0 and expires > time.monotonic():
            self._credits[identity] = (credit - 1, expires)
            if credit - 1 <= self._low_water and identity not in self._fetching_ahead:
                self._fetching_ahead[identity] = asyncio.create_task(self._fetch_ahead(identity))
            return True
        return False

    async def _fetch_ahead(self, identity: str) -> None:
        """Take the next batch before this one runs out; requests that run out meanwhile wait for
        it on the refill lock instead of fetching one of their own."""
        try:
            async with self._refill_lock(identity):
                credit, expires = self._credits.get(identity, (0, 0.0))
                now = time.monotonic()
                if credit > self._low_water and expires > now:
                    return  # a request that ran out refilled meanwhile
                if self._exact_until.get(identity, 0.0) > now:
                    return  # near the limit: requests are counted one by one
                try:
                    refilled = await self._limiter.hit(self._item, identity, cost=self.batch)
                except (StorageError, RedisError, OSError) as exc:
                    log.warning("rate limit batch not fetched ahead", extra={"error": str(exc)})
                    return
                now = time.monotonic()
                if not refilled:
                    if len(self._exact_until) >= self._MAX_IDENTITIES:
                        self._exact_until.clear()
                    self._exact_until[identity] = now + self._batch_ttl_s
                    return
                credit, expires = self._credits.get(identity, (0, 0.0))
                left = credit if expires > now else 0
                self._credits[identity] = (left + self.batch, now + self._batch_ttl_s)
        finally:
            self._fetching_ahead.pop(identity, None)

    @staticmethod
    def _unavailable(exc: Exception) -> RateDecision:
        log.warning("rate limiter unavailable; request allowed", extra={"error": str(exc)})
        return RateDecision(allowed=True)
