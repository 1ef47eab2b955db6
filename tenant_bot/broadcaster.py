"""The mailing sender: the owner's mailings delivered durably, once per customer, within Telegram's
limits, with progress and a final report for the owner.

Durability and "never twice" come from the booking core (:mod:`tenant_bot.booking.broadcasts`): one
lease per tenant, a per-recipient state claimed before each send. This loop adds the pace and the
owner's view:

- **Pace.** Telegram allows about 30 messages a second per bot and one a second per chat. A mailing
  sends at most ``rate`` messages a second (20 by default, leaving room for the bot's answers to
  people meanwhile), one per chat. A 429 is waited out by the session
  (:class:`~kit.flood.RetryAfterMiddleware`) when short; a longer ``retry_after`` pauses the whole
  mailing that long and puts the recipient back, to be tried again.
- **Outcomes.** Sent; blocked (Telegram 403: the customer blocked the bot or left Telegram); failed
  (any other refusal, or ``MAX_ATTEMPTS`` passing faults in a row); skipped (opted out since the
  mailing was confirmed). Each is counted and the failures logged once, without any text or phone.
- **Owner's view.** The owner's confirmation message becomes the progress (edited every
  ``PROGRESS_EVERY`` seconds, with a Stop button); a finished or stopped mailing sends its report once.
- **Restarts.** The loop looks for a mailing to send at start-up, after the owner confirms one
  (:meth:`nudge`), and every ``recheck`` seconds (another process's mailing whose lease ran out). A
  clean stop finishes the message in flight and gives the lease back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter

from tenant_bot.booking import BookingCore
from tenant_bot.booking.broadcasts import Lease
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import Clock
from tenant_bot.booking.outreach import Broadcast, Recipient, RecipientState
from tenant_bot.delivery import Delivery, Outcome
from tenant_bot.notifications import Notifier
from tenant_bot.outreach_views import (
    audience_label,
    progress_text,
    send_mailing,
    stop_keyboard,
    unsubscribe_keyboard,
)
from tenant_bot.wakeable import WakeableLoop, uninterrupted

log = logging.getLogger(__name__)

MAILING = "mailing"
RATE_PER_SECOND = 20.0
BATCH = 50
MAX_ATTEMPTS = 5
PROGRESS_EVERY_SECONDS = 3.0
TICK_SECONDS = 1.0
RECHECK_SECONDS = 300.0
RETRY_WAIT_MAX_SECONDS = 5.0
TAKE_OVER_CHECK = timedelta(seconds=15)


class Broadcaster(WakeableLoop):
    """Sends the tenant's mailings (see the module docstring)."""

    name = "mailings"

    def __init__(
        self,
        *,
        core: BookingCore,
        bot: Bot,
        notifier: Notifier,
        clock: Clock,
        rate: float = RATE_PER_SECOND,
        interval: float = TICK_SECONDS,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        super().__init__(clock=clock, interval=interval, recheck=recheck)
        self.core = core
        self.bot = bot
        self.notifier = notifier
        self.rate = rate
        self._next_send = 0.0
        self._last_progress = 0.0
        self.flood_waits = 0  # 429s that paused a mailing (the session's short waits not counted)

    async def tick(self) -> datetime | None:
        lease = await self.core.broadcasts.acquire(worker=self.worker_id)
        if lease is not None:
            try:
                await self._send(lease)
            finally:
                with contextlib.suppress(BookingError):
                    await uninterrupted(self.core.broadcasts.release(lease), grace=5.0)
        await self._report_finished()
        if lease is not None:
            return self.clock()  # at once: another mailing may be waiting
        if await self.core.broadcasts.busy():
            # another process holds the lease: be ready to take over if it dies
            return self.clock() + TAKE_OVER_CHECK
        return None

    async def _send(self, lease: Lease) -> None:
        broadcasts = self.core.broadcasts
        mailing = lease.broadcast
        log.info("mailing sending", extra={"broadcast_id": mailing.id, "total": mailing.recipients})
        while True:
            self.alive()
            renewed = await broadcasts.acquire(token=lease.token)
            if renewed is None or renewed.broadcast.id != mailing.id:
                return  # stopped by the owner, finished, or the lease was lost
            batch = await broadcasts.due(lease, limit=BATCH)
            if not batch:
                if await broadcasts.finish(lease):
                    log.info("mailing finished", extra={"broadcast_id": mailing.id})
                    return
                retry = await broadcasts.next_retry(lease)
                wait = 1.0 if retry is None else (retry - self.clock()).total_seconds()
                await asyncio.sleep(min(max(wait, 0.2), RETRY_WAIT_MAX_SECONDS))
                continue
            for recipient in batch:
                await self._pace()
                await uninterrupted(self._deliver(lease, recipient))
                await self._progress(mailing)

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._next_send > now:
            await asyncio.sleep(self._next_send - now)
        self._next_send = max(now, self._next_send) + 1.0 / self.rate

    async def _deliver(self, lease: Lease, recipient: Recipient) -> None:
        broadcasts = self.core.broadcasts
        if await broadcasts.claim(lease, recipient) != RecipientState.SENDING.value:
            return
        texts = self.notifier.texts
        locale = recipient.locale if recipient.locale in texts.locales else texts.default_locale
        mailing = lease.broadcast
        try:
            await send_mailing(
                self.bot,
                recipient.chat_id,
                text=mailing.text,
                photo_file_id=mailing.photo_file_id,
                markup=unsubscribe_keyboard(texts, locale),
            )
        except Exception as exc:
            result = Delivery.of(exc)
            state, retry_at = self._after_fault(exc, result, recipient, mailing.id)
            await broadcasts.settle(
                lease, recipient, state=state, error=result.error, retry_at=retry_at
            )
            return
        await broadcasts.settle(lease, recipient, state=RecipientState.SENT)

    def _after_fault(
        self, exc: BaseException, result: Delivery, recipient: Recipient, mailing_id: int
    ) -> tuple[RecipientState, datetime | None]:
        item = f"{mailing_id}:{recipient.customer_id}"
        if isinstance(exc, TelegramRetryAfter):
            # the bot's whole budget is spent: the mailing pauses, the customer is tried again
            self.flood_waits += 1
            self._next_send = asyncio.get_running_loop().time() + exc.retry_after
            self.notifier.tally.deferred(MAILING, item, result.error, result.retry_after)
            return RecipientState.PENDING, self.clock() + timedelta(seconds=exc.retry_after)
        if isinstance(exc, TelegramForbiddenError):
            return RecipientState.BLOCKED, None
        if result.outcome is Outcome.RETRY and recipient.attempts + 1 < MAX_ATTEMPTS:
            delay = result.next_attempt_in(recipient.attempts + 1)
            self.notifier.tally.deferred(MAILING, item, result.error, delay)
            return RecipientState.PENDING, self.clock() + delay
        self.notifier.tally.set_aside(MAILING, item, result.error)
        return RecipientState.FAILED, None

    async def _progress(self, mailing: Broadcast, *, force: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        if not force and now - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now
        if mailing.progress_chat_id is None or mailing.progress_message_id is None:
            return
        locale = await self.notifier.owner_locale(mailing.progress_chat_id)
        texts = self.notifier.texts
        counts = await self.core.broadcasts.counts(mailing.id)
        text = progress_text(
            texts, locale, await self._audience(mailing, locale), counts, status="sending"
        )
        with contextlib.suppress(TelegramAPIError):  # not modified, too old: the report follows
            await self.bot.edit_message_text(
                text=text,
                chat_id=mailing.progress_chat_id,
                message_id=mailing.progress_message_id,
                reply_markup=stop_keyboard(texts, locale, mailing.id),
            )

    async def _audience(self, mailing: Broadcast, locale: str) -> str:
        name = ""
        if mailing.audience.service_id:
            with contextlib.suppress(BookingError):
                name = (await self.core.catalogue.get_service(mailing.audience.service_id)).name
        return audience_label(self.notifier.texts, locale, mailing.audience, name)

    async def _report_finished(self) -> None:
        """Each finished or stopped mailing's report, once, to the owner who sent it."""
        broadcasts = self.core.broadcasts
        for mailing in await broadcasts.unreported():
            if not await broadcasts.claim_report(mailing.id):
                continue
            await uninterrupted(self._report(await broadcasts.get(mailing.id)))

    async def _report(self, mailing: Broadcast) -> None:
        texts = self.notifier.texts
        locale = await self.notifier.owner_locale(mailing.created_by)
        counts = await self.core.broadcasts.counts(mailing.id)
        text = progress_text(
            texts, locale, await self._audience(mailing, locale), counts, status=mailing.status
        )
        if mailing.progress_chat_id is not None and mailing.progress_message_id is not None:
            with contextlib.suppress(TelegramAPIError):
                await self.bot.edit_message_text(
                    text=text,
                    chat_id=mailing.progress_chat_id,
                    message_id=mailing.progress_message_id,
                )
        result = await self.notifier.courier.deliver(mailing.created_by, text)
        if not result.ok:
            self.notifier.tally.set_aside("mailing_report", mailing.id, result.error)
        log.info(
            "mailing reported",
            extra={
                "broadcast_id": mailing.id,
                "status": mailing.status,
                "sent": counts.sent,
                "blocked": counts.blocked,
                "failed": counts.failed,
                "skipped": counts.skipped,
            },
        )
