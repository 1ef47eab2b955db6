"""A periodic background loop that reports its progress to a :class:`~kit.supervisor.Supervisor`.

Many of the platform's loops are "do one pass, wait, repeat" (the reconciler, the subscription
lifecycle, the idempotency purge). :func:`every` is that shape once: a pass that raises is *not*
caught here, so the supervisor sees the crash, logs it with its traceback, counts it and restarts
the loop with backoff; a pass that completes calls ``on_tick`` (the supervisor's beater), so a loop
that hangs inside a pass turns stale.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any


async def every(
    interval: float,
    one_pass: Callable[[], Awaitable[Any]],
    *,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Run ``one_pass`` now and then every ``interval`` seconds until ``stop`` is set (returns) or
    the task is cancelled; exceptions of a pass propagate to the caller (the supervisor)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        await one_pass()
        if on_tick is not None:
            on_tick()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
