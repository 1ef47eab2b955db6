"""The loop that ends unpaid holds: a booking awaiting its deposit past ``hold_until`` is cancelled
and its time offered to the waitlist (issue 19).

Exactly once, across restarts and processes: the core cancels each expired hold in one statement
under ``FOR UPDATE SKIP LOCKED`` (a hold is expired by one pass of one process) and marks it
``release_pending``; the waitlist is told afterwards and the mark cleared only then, so a process
that dies in between leaves the mark for the next pass, whose repeat reaches nobody twice (the
notices' once-keys). Idle bots sleep until the next hold runs out (one small query per pass, at most
every ``recheck`` seconds); a new hold wakes the loop (``nudge``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import StorageUnavailable
from tenant_bot.booking.models import Clock
from tenant_bot.notifications import Notifier
from tenant_bot.payments import Payments

log = logging.getLogger(__name__)

MIN_PAUSE_SECONDS = 1.0
RECHECK_SECONDS = 300.0
IDLE_BEAT_SECONDS = 60.0


class HoldReleaser:
    """Runs :meth:`tick` whenever a hold may have run out, until cancelled."""

    def __init__(
        self,
        *,
        core: BookingCore,
        payments: Payments,
        notifier: Notifier,
        clock: Clock,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        self.core = core
        self.payments = payments
        self.notifier = notifier
        self.clock = clock
        self.recheck = recheck
        self.wake = asyncio.Event()

    def nudge(self) -> None:
        """A hold was taken: look again now (its end may be sooner than the loop's next pass)."""
        self.wake.set()

    async def tick(self) -> int:
        """Expire the holds that ran out and tell the waitlist of each freed time; how many."""
        expired = await self.core.deposits.expire_holds()
        for booking in expired:
            await self.payments.hold_expired(booking)
        settings = await self.core.catalogue.get_settings()
        for booking in await self.core.deposits.pending_releases():
            await self.notifier.offer_freed_time(booking, settings=settings)
            await self.core.deposits.release_done(booking.id)
        return len(expired)

    async def pause(self) -> float:
        settings = await self.core.deposits.next_hold_end()
        if settings is None:
            return self.recheck
        wait = (settings - self.clock()).total_seconds()
        return min(max(wait, MIN_PAUSE_SECONDS), self.recheck)

    async def run(self, *, beat: Callable[[], None] | None = None) -> None:
        failures = 0
        while True:
            self.wake.clear()
            try:
                await self.tick()
                pause = await self.pause()
                failures = 0
            except StorageUnavailable as exc:
                failures += 1
                log.warning("hold pass failed", extra={"code": exc.code, "failures": failures})
                pause = min(MIN_PAUSE_SECONDS * 2**failures, 15.0)
            if beat is not None:
                beat()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + pause
            while (remaining := deadline - loop.time()) > 0 and not self.wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, IDLE_BEAT_SECONDS)):
                        await self.wake.wait()
                if beat is not None:
                    beat()
