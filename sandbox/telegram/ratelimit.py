"""Telegram-like flood limits for sending methods.

Telegram does not publish an algorithm, only the guidance "about 30 messages per second per bot, about
one per second per chat, short bursts tolerated". A token bucket models exactly that (sustained rate
plus burst), which a fixed or moving window (as in the ``limits`` package) does not; it is a dozen
lines, so it is written here with an injectable clock to keep tests deterministic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.telegram.errors import too_many_requests

_SLACK = 0.01


@dataclass(frozen=True)
class RateLimits:
    """Sustained rates and bursts; ``enabled=False`` turns flood control off."""

    per_bot_per_second: float = 30.0
    per_bot_burst: int = 30
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 5
    enabled: bool = True

    @classmethod
    def disabled(cls) -> RateLimits:
        """No flood control at all: what most bot tests want."""
        return cls(enabled=False)

    def to_dict(self) -> dict[str, float | int | bool]:
        """JSON form for the control API."""
        return {
            "per_bot_per_second": self.per_bot_per_second,
            "per_bot_burst": self.per_bot_burst,
            "per_chat_per_second": self.per_chat_per_second,
            "per_chat_burst": self.per_chat_burst,
            "enabled": self.enabled,
        }


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self) -> float:
        # A client that sleeps exactly retry_after may wake a hair early; forgive that much.
        return 0.0 if self.tokens >= 1 - _SLACK else (1 - self.tokens) / self.rate


@dataclass
class FloodBuckets:
    """Telegram's flood limits as the emulator enforces them: per-bot and per-chat token buckets.

    :meth:`hit` raises 429 when either is empty. (Not the API's request limiter, which is
    ``control_plane.ratelimit.RateLimiter``.)
    """

    limits: RateLimits = field(default_factory=RateLimits)
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[int, int | None], _Bucket] = field(default_factory=dict)

    def configure(self, limits: RateLimits) -> None:
        """Replace the limits and forget accumulated usage."""
        self.limits = limits
        self._buckets.clear()

    def _bucket(self, bot_id: int, chat_id: int | None) -> _Bucket:
        key = (bot_id, chat_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            if chat_id is None:
                rate, burst = self.limits.per_bot_per_second, self.limits.per_bot_burst
            else:
                rate, burst = self.limits.per_chat_per_second, self.limits.per_chat_burst
            capacity = float(max(1, burst))
            bucket = _Bucket(rate=rate, capacity=capacity, tokens=capacity, updated=self.clock())
            self._buckets[key] = bucket
        return bucket

    def hit(self, bot_id: int, chat_id: int) -> None:
        """Take one message from both buckets or raise ``429`` with ``retry_after``."""
        if not self.limits.enabled:
            return
        now = self.clock()
        buckets = [self._bucket(bot_id, None), self._bucket(bot_id, chat_id)]
        for bucket in buckets:
            bucket.refill(now)
        wait = max(bucket.wait_time() for bucket in buckets)
        if wait > 0:
            raise too_many_requests(max(1, math.ceil(wait)))
        for bucket in buckets:
            bucket.tokens = max(0.0, bucket.tokens - 1)
