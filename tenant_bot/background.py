"""Periodic work of the bot: reminders, "did they come?" cards, and housekeeping.

Exactly-once comes from the booking core's claims (``FOR UPDATE SKIP LOCKED`` with a lease): any
number of bot processes may run this loop, each reminder is claimed by one of them, marked sent after
delivery, and given back if delivery failed for a reason worth retrying. A process killed mid-send
leaves its claim to expire, so nothing is lost. Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import datetime, timedelta

from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import Clock
from tenant_bot.notifications import Notifier

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
HOUSEKEEPING_EVERY = timedelta(hours=1)


class BackgroundWorker:
    """Runs :meth:`tick` every ``interval`` seconds until cancelled."""

    def __init__(
        self, *, core: BookingCore, notifier: Notifier, clock: Clock, interval: float = TICK_SECONDS
    ) -> None:
        self.core = core
        self.notifier = notifier
        self.clock = clock
        self.interval = interval
        self.worker_id = f"{socket.gethostname()[:24]}:{os.getpid()}"
        self._last_housekeeping: datetime | None = None
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Loop forever; one failed tick is logged and the next one tries again."""
        while True:
            try:
                await self.tick()
            except BookingError as exc:
                log.warning("background tick failed", extra={"code": exc.code})
            except Exception:
                log.exception("background tick crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()

    async def tick(self) -> dict[str, int]:
        """One pass: send due reminders, put ended bookings to the owners, tidy up hourly."""
        settings = await self.core.catalogue.get_settings()
        sent = 0
        for reminder in await self.core.reminders.claim_due(worker=self.worker_id):
            outcome = await self.notifier.remind(reminder, settings=settings)
            if outcome == "failed":
                await self.core.reminders.release(reminder.id, reminder.claim_token)
            elif await self.core.reminders.mark_sent(reminder.id, reminder.claim_token):
                sent += outcome == "sent"
        prompted = 0
        for details in await self.core.completion.claim_prompts():
            await self.notifier.completion_card(details, settings=settings)
            prompted += 1
        now = self.clock()
        if self._last_housekeeping is None or now - self._last_housekeeping >= HOUSEKEEPING_EVERY:
            self._last_housekeeping = now
            await self.core.reminders.expire_stale()
            await self.core.bookings.purge_idempotency_keys()
        if sent or prompted:
            log.info(
                "background work done", extra={"reminders": sent, "completion_cards": prompted}
            )
        return {"reminders": sent, "completion_cards": prompted}
