"""The loop that ends unpaid holds: a booking awaiting its deposit past ``hold_until`` is cancelled
and its time offered to the waitlist (issue 19).

Exactly once, across restarts and processes: the core cancels each expired hold in one statement
under ``FOR UPDATE SKIP LOCKED`` (a hold is expired by one pass of one process) and marks it
``release_pending``; the waitlist is told afterwards and the mark cleared only then, so a process
that dies in between leaves the mark for the next pass, whose repeat reaches nobody twice (the
notices' once-keys). Idle bots sleep until the next hold runs out (one small query per pass, at most
every ``recheck`` seconds); a new hold tells the loop when it ends (``expect``, no query).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

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
        self._due: datetime | None = None  # the next hold's end, as last known
        self._prepared = False  # the payment token's key, made by the first pass when needed

    def expect(self, hold_until: datetime) -> None:
        """A hold was taken that ends at ``hold_until``: the loop wakes by then (no query now)."""
        if self._due is None or hold_until < self._due:
            self._due = hold_until
            self.wake.set()

    def nudge(self) -> None:
        """Run a pass now (tests; a hold's end changed in another way)."""
        self._due = self.clock()
        self.wake.set()

    async def tick(self) -> int:
        """Expire the holds that ran out and tell the waitlist of each freed time; how many."""
        if not self._prepared:  # at start-up, off any customer's tap
            self.payments.prepare(await self.core.deposits.settings())
            self._prepared = True
        expired = await self.core.deposits.expire_holds()
        for booking in expired:
            await self.payments.hold_expired(booking)
        settings = await self.core.catalogue.get_settings()
        for booking in await self.core.deposits.pending_releases():
            await self.notifier.offer_freed_time(booking, settings=settings)
            await self.core.deposits.release_done(booking.id)
        self._due = await self.core.deposits.next_hold_end()
        return len(expired)

    def _wait(self) -> float:
        if self._due is None:
            return self.recheck
        return min(max((self._due - self.clock()).total_seconds(), 0.0), self.recheck)

    async def run(self, *, beat: Callable[[], None] | None = None) -> None:
        """A pass at start, then one whenever the next hold ends (at least every ``recheck``
        seconds, which finds holds another process took), beating after each and while idle."""
        failures = 0
        while True:
            try:
                await self.tick()
                failures = 0
                retry = None
            except StorageUnavailable as exc:
                failures += 1
                log.warning("hold pass failed", extra={"code": exc.code, "failures": failures})
                retry = min(MIN_PAUSE_SECONDS * 2**failures, 15.0)
            if beat is not None:
                beat()
            await self._sleep(retry, beat)

    async def _sleep(self, retry: float | None, beat: Callable[[], None] | None) -> None:
        """Until the next hold ends (re-read when ``expect`` moves it closer), ``recheck`` at most;
        or ``retry`` seconds after a failed pass."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            self.wake.clear()
            elapsed = loop.time() - started
            if retry is not None:
                remaining = retry - elapsed
            else:
                remaining = min(self._wait(), self.recheck - elapsed)
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, IDLE_BEAT_SECONDS)):
                    await self.wake.wait()
            if beat is not None:
                beat()
