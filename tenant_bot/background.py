"""Periodic work of the bot: reminders, "did they come?" cards, and housekeeping.

Exactly-once comes from the booking core's claims (``FOR UPDATE SKIP LOCKED`` with a lease): any
number of bot processes may run this loop, each reminder is claimed by one of them, marked sent after
delivery, and given back if delivery failed for a reason worth retrying. A process killed mid-send
leaves its claim to expire, so nothing is lost. Time comes from the injected clock.

Poison isolation: each item is settled on its own. One that failed for a passing reason (timeout,
Telegram 5xx or 429) is given back with the time of its next attempt (30 s, doubling up to 15 min, or
Telegram's flood wait); one that can never be delivered (a text that cannot render, a chat Telegram
refuses, a customer who blocked the bot) is marked failed with its error, counted and logged once, and
the items behind it go on.

New-booking notices come first in each pass: the bookings armed since the last pass are handed out
as one row per recipient (owners, the booked staff member, and the customer's own confirmation,
due a minute later and sent only if the checkout could not show it), then each due row is claimed,
marked ``sending`` right before its one Telegram call and settled like a reminder: sent, back with a
backoff after a passing fault, set aside with its error for good. A row a dead sender left
``sending`` is set aside as interrupted (maybe delivered; never sent twice). See
:mod:`tenant_bot.booking.notices`.

Reminders ask "are you coming?"; when the owner chose to release unconfirmed bookings, each pass also
releases those whose time has come (:meth:`~tenant_bot.booking.attendance.AttendanceService.release_due`,
each booking once whatever the number of processes), tells their customers and owners and offers
the time to the waitlist.

Idle tenants hold no database connection: after each pass the loop asks when the next reminder
or completion card falls due (:meth:`~tenant_bot.booking.reminders.ReminderService.next_due`) and
sleeps until then, at least ``interval`` and at most ``recheck`` seconds (the recheck finds work that
another process queued). A booking made, moved or confirmed in this process calls :meth:`nudge`,
which runs a pass ``interval`` seconds later (many nudges, one pass), and half a second later a
notices-only pass, so the owners hear of a new booking within about a second. The worker's booking core sits
on a pool of its own whose one connection closes right after a pass (tenant_bot.resources), so a
tenant with nothing due touches PostgreSQL once per ``recheck`` and holds nothing in between.

Loop health: the loop runs under the process's :class:`~kit.supervisor.Supervisor` and reports
every finished pass with ``beat``. A tick that fails because PostgreSQL is unreachable
(:class:`~tenant_bot.booking.errors.StorageUnavailable`) is an outage, not a fault of the bot: it is
logged and retried with a growing pause, and the loop keeps beating, so the deploy worker does not
restart a bot that a restart cannot help. Anything else escapes to the supervisor, which logs it
with its traceback, counts it and restarts the loop with backoff; a loop that keeps crashing turns the
bot's health red.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import StorageUnavailable
from tenant_bot.booking.models import BusinessSettings, ClaimedReminder, Clock, CompletionPrompt
from tenant_bot.booking.notices import INTERRUPTED, ClaimedNotice
from tenant_bot.delivery import Delivery, Outcome
from tenant_bot.notifications import (
    COMPLETION_CARD,
    CUSTOMER_NOTICE,
    OWNER_NOTICE,
    REMINDER,
    Notifier,
)

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
RECHECK_SECONDS = 300.0  # a pass at least this often, even with nothing due
IDLE_BEAT_SECONDS = 60.0  # while sleeping, the loop still tells its supervisor it is alive
OUTAGE_PAUSE_MAX_SECONDS = 15.0  # a reminder due during an outage goes out soon after it
HOUSEKEEPING_EVERY = timedelta(hours=1)
NUDGE_SECONDS = 0.5  # a notices-only pass this long after a booking, one per burst


class BackgroundWorker:
    """Runs :meth:`tick` every ``interval`` seconds until cancelled."""

    def __init__(
        self,
        *,
        core: BookingCore,
        notifier: Notifier,
        clock: Clock,
        interval: float = TICK_SECONDS,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        self.core = core
        self.notifier = notifier
        self.clock = clock
        self.interval = interval
        self.recheck = max(recheck, interval)
        self.worker_id = f"{socket.gethostname()[:24]}:{os.getpid()}"
        self._last_housekeeping: datetime | None = None
        self._next_due: datetime | None = None
        self._nudged = False
        self._running = False
        self._notices_soon = False
        self._notice_pass: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def nudge(self) -> None:
        """Something may fall due soon: run a pass within ``interval`` seconds (not at once, so a
        burst of bookings costs one pass). While :meth:`run` runs, a booking's notices go out
        sooner: a notices-only pass ``NUDGE_SECONDS`` later (one per burst too)."""
        loop = asyncio.get_running_loop()
        if self._running and not self._notices_soon:
            self._notices_soon = True
            loop.call_later(min(NUDGE_SECONDS, self.interval), self._start_notice_pass)
        if self._nudged:
            return
        self._nudged = True
        loop.call_later(self.interval, self.wake.set)

    def _start_notice_pass(self) -> None:
        self._notices_soon = False
        if self._running and (self._notice_pass is None or self._notice_pass.done()):
            self._notice_pass = asyncio.get_running_loop().create_task(self._send_notices())

    async def _send_notices(self) -> None:
        """The notices-only pass. Nothing is lost if it fails: the notices stay in the database
        for the next regular pass, which retries them; the failure is logged."""
        try:
            settings = await self.core.catalogue.get_settings()
            counts = {"retried": 0, "failed": 0}
            sent = await self._notices(settings, counts)
            if sent or any(counts.values()):
                log.info("notices sent", extra={"notices": sent, **counts})
        except StorageUnavailable as exc:
            log.warning("notice pass failed", extra={"code": exc.code})
        except Exception:
            log.exception("notice pass crashed; the next regular pass retries its notices")

    async def run(self, *, beat: Callable[[], None] | None = None) -> None:
        """Loop forever, calling ``beat`` after every pass (one cut short by an outage included)
        and at least every ``IDLE_BEAT_SECONDS`` while it sleeps."""
        self._running = True
        try:
            await self._loop(beat)
        finally:
            self._running = False
            if self._notice_pass is not None:
                self._notice_pass.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._notice_pass

    async def _loop(self, beat: Callable[[], None] | None) -> None:
        outages = 0
        while True:
            self._nudged = False
            try:
                await self.tick()
                outages = 0
                pause = self.pause()
            except StorageUnavailable as exc:
                outages += 1
                log.warning("background tick failed", extra={"code": exc.code, "failures": outages})
                pause = min(self.interval * 2 ** min(outages, 8), OUTAGE_PAUSE_MAX_SECONDS)
            if beat is not None:
                beat()
            await self._sleep(max(pause, self.interval), beat)

    def pause(self) -> float:
        """Seconds until the next pass: until the next item falls due, within [interval, recheck]."""
        if self._next_due is None:
            return self.recheck
        wait = (self._next_due - self.clock()).total_seconds()
        return min(max(wait, self.interval), self.recheck)

    async def _sleep(self, seconds: float, beat: Callable[[], None] | None) -> None:
        """Sleep ``seconds`` or until woken, beating every ``IDLE_BEAT_SECONDS``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as its timeout fires, and the loop would then outlive its supervisor's stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, IDLE_BEAT_SECONDS)):
                    await self.wake.wait()
            if self.wake.is_set():
                break
            if beat is not None:
                beat()
        self.wake.clear()

    async def tick(self) -> dict[str, int]:
        """One pass: send due reminders, put ended bookings to the owners, tidy up hourly."""
        settings = await self.core.catalogue.get_settings()
        counts = {"reminders": 0, "completion_cards": 0, "retried": 0, "failed": 0, "released": 0}
        counts["notices"] = await self._notices(settings, counts)
        for reminder in await self.core.reminders.claim_due(worker=self.worker_id):
            outcome = await self._remind(reminder, settings)
            counts[_COUNTER[outcome]] += 1
        if settings.release_unconfirmed_hours is not None:
            counts["released"] = await self._release_unconfirmed(settings)
        for prompt in await self.core.completion.claim_cards():
            outcome = await self._ask_owners(prompt, settings)
            counts[_COUNTER[outcome] if outcome is not Outcome.SENT else "completion_cards"] += 1
        now = self.clock()
        if self._last_housekeeping is None or now - self._last_housekeeping >= HOUSEKEEPING_EVERY:
            self._last_housekeeping = now
            await self.core.reminders.expire_stale()
            await self.core.bookings.purge_idempotency_keys()
        due = (await self.core.reminders.next_due(), await self.core.notices.next_due())
        self._next_due = min((d for d in due if d is not None), default=None)
        if any(counts.values()):
            log.info("background work done", extra=counts)
        return counts

    async def _notices(self, settings: BusinessSettings, counts: dict[str, int]) -> int:
        """Hand out the armed bookings' notices, set aside the interrupted ones, send the due ones;
        returns how many were sent (passing and lasting failures go to ``counts``)."""
        notices = self.core.notices
        for booking_id, kind, _ in await notices.set_aside_interrupted():
            self.notifier.tally.set_aside(_notice_kind(kind), booking_id, INTERRUPTED)
            counts["failed"] += 1
        await notices.hand_out(owner_ids=self.notifier.owner_ids)
        sent = 0
        while claimed := await notices.claim(worker=self.worker_id):
            for notice in claimed:
                outcome = await self._notice(notice, settings)
                if outcome is Outcome.SENT:
                    sent += 1
                elif outcome is not None:
                    counts[_COUNTER[outcome]] += 1
        return sent

    async def _notice(self, notice: ClaimedNotice, settings: BusinessSettings) -> Outcome | None:
        """Send one claimed notice and settle it; None when nothing was sent (a customer's
        confirmation the checkout showed, or a claim another sender took over)."""
        notices = self.core.notices
        kind = _notice_kind(notice.kind)
        if notice.role == "customer" and await self.notifier.was_shown(notice.booking_id):
            await notices.settle(notice, "skipped")
            return None
        if not await notices.start_sending(notice):
            return None
        result = await self.notifier.new_booking_notice(notice, settings=settings)
        if result.outcome is Outcome.SENT:
            await notices.settle(notice, "sent")
        elif result.outcome is Outcome.FAILED:
            self.notifier.tally.set_aside(kind, notice.booking_id, result.error)
            await notices.settle(notice, "failed", error=result.error or "failed")
        else:
            delay = self._defer(kind, notice.booking_id, result, notice.attempts)
            await notices.retry_later(
                notice, retry_at=self.clock() + delay, error=result.error or "retry"
            )
        return result.outcome

    async def _release_unconfirmed(self, settings: BusinessSettings) -> int:
        """Release the bookings nobody confirmed by the owner's release time; tell their customers
        and owners, and offer each freed time to the waitlist."""
        released = await self.core.attendance.release_due()
        for details in released:
            log.info("unconfirmed booking released", extra={"booking_id": details.booking.id})
            await self.notifier.booking_released(details, settings=settings)
            await self.notifier.offer_freed_time(details.booking, settings=settings)
        return len(released)

    async def _remind(self, reminder: ClaimedReminder, settings: BusinessSettings) -> Outcome:
        result = await self.notifier.remind(reminder, settings=settings)
        reminders = self.core.reminders
        if result.outcome is Outcome.SENT:
            # False: the lease ran out and another sender took over (it settles the reminder)
            sent = await reminders.mark_sent(reminder.id, reminder.claim_token)
            return Outcome.SENT if sent else Outcome.RETRY
        if result.outcome is Outcome.FAILED:
            await reminders.mark_failed(
                reminder.id, reminder.claim_token, error=result.error or "failed"
            )
            return Outcome.FAILED
        delay = self._defer(REMINDER, reminder.id, result, reminder.attempts)
        await reminders.release(
            reminder.id, reminder.claim_token, retry_at=self.clock() + delay, error=result.error
        )
        return Outcome.RETRY

    async def _ask_owners(self, prompt: CompletionPrompt, settings: BusinessSettings) -> Outcome:
        result = await self.notifier.completion_card(prompt.details, settings=settings)
        booking_id = prompt.details.booking.id
        completion = self.core.completion
        if result.outcome is Outcome.FAILED:
            await completion.mark_failed(
                booking_id, attempts=prompt.attempts, error=result.error or "failed"
            )
        elif result.outcome is Outcome.RETRY:
            delay = self._defer(COMPLETION_CARD, booking_id, result, prompt.attempts)
            await completion.retry_later(
                booking_id,
                attempts=prompt.attempts,
                retry_at=self.clock() + delay,
                error=result.error or "retry",
            )
        return result.outcome

    def _defer(self, kind: str, item_id: int, result: Delivery, attempts: int) -> timedelta:
        delay = result.next_attempt_in(attempts)
        self.notifier.tally.deferred(kind, item_id, result.error, delay)
        return delay


_COUNTER = {Outcome.SENT: "reminders", Outcome.RETRY: "retried", Outcome.FAILED: "failed"}


def _notice_kind(kind: str) -> str:
    """The tally's kind of a durable notice: the owners' and staff's, or the customer's."""
    return CUSTOMER_NOTICE if kind == "booked" else OWNER_NOTICE
