"""A periodic loop that sleeps until its next item falls due or it is woken, the shape of the
review-request and mailing senders (issue 20), as :mod:`tenant_bot.background` is for reminders.

Each pass is :meth:`WakeableLoop.tick`, which returns when the next pass is wanted (None: nothing
known to be due). Between passes the loop sleeps at least ``interval`` and at most ``recheck``
seconds (the recheck finds work another process queued), or until :meth:`nudge`. A pass cut short by
a database outage (:class:`StorageUnavailable`) is logged and retried with a growing pause while the
loop keeps beating; anything else escapes to the process's supervisor, which logs it with its
traceback, counts it (``loop_restarts`` in the heartbeat, hence the control plane's ``/metrics``) and
restarts the loop with backoff.

:func:`uninterrupted` lets one message's send-and-record finish when the loop is cancelled (a clean
stop), so a restart never leaves a message whose outcome is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from tenant_bot.booking.errors import StorageUnavailable
from tenant_bot.booking.models import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")

IDLE_BEAT_SECONDS = 60.0
OUTAGE_PAUSE_MAX_SECONDS = 15.0
FINISH_GRACE_SECONDS = 10.0


async def uninterrupted(operation: Awaitable[T], *, grace: float = FINISH_GRACE_SECONDS) -> T:
    """Await ``operation``; if the caller is cancelled meanwhile, let it finish (at most ``grace``
    seconds) before the cancellation goes on."""
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # asyncio.wait, not wait_for: it never cancels the task nor swallows our cancellation
        await asyncio.wait({task}, timeout=grace)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error here was already logged by the operation
        raise


class WakeableLoop(ABC):
    """Base of a supervised sender: ``run`` forever, ``tick`` once per pass, ``nudge`` to hurry."""

    name = "loop"

    def __init__(self, *, clock: Clock, interval: float, recheck: float) -> None:
        self.clock = clock
        self.interval = interval
        self.recheck = max(recheck, interval)
        self.worker_id = f"{socket.gethostname()[:24]}:{os.getpid()}"
        self.wake = asyncio.Event()
        self._nudged = False
        self._beat: Callable[[], None] | None = None

    def alive(self) -> None:
        """Tell the supervisor a long pass is still making progress (a mailing being sent)."""
        if self._beat is not None:
            self._beat()

    @abstractmethod
    async def tick(self) -> datetime | None:
        """One pass; returns when the next one is due (None: nothing known)."""

    def nudge(self, *, now: bool = False) -> None:
        """Work may be waiting: run a pass within ``interval`` seconds (``now``: at once)."""
        if now:
            self.wake.set()
            return
        if self._nudged:
            return
        self._nudged = True
        asyncio.get_running_loop().call_later(self.interval, self.wake.set)

    async def run(self, *, beat: Callable[[], None] | None = None) -> None:
        self._beat = beat
        outages = 0
        while True:
            self._nudged = False
            self.wake.clear()
            try:
                next_due = await self.tick()
                outages = 0
                pause = self._pause(next_due)
            except StorageUnavailable as exc:
                outages += 1
                log.warning(
                    "outreach pass failed",
                    extra={"loop": self.name, "code": exc.code, "failures": outages},
                )
                pause = min(self.interval * 2 ** min(outages, 8), OUTAGE_PAUSE_MAX_SECONDS)
            if beat is not None:
                beat()
            await self._sleep(pause, beat)

    def _pause(self, next_due: datetime | None) -> float:
        if next_due is None:
            return self.recheck
        wait = (next_due - self.clock()).total_seconds()
        return min(max(wait, self.interval), self.recheck)

    async def _sleep(self, seconds: float, beat: Callable[[], None] | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0 and not self.wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, IDLE_BEAT_SECONDS)):
                    await self.wake.wait()
            if beat is not None:
                beat()
