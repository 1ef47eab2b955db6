"""The review-request sender: once after each visit marked "came", the customer is asked for stars.

Requests come from the database (a visit marked done writes its request, due at the booking's end at
the earliest; :mod:`tenant_bot.booking.reviews`). Each pass claims due requests one at a time (the
claim moves the request to 'sending' before the message goes out, so no two processes ask twice),
sends the question in the customer's language with five star buttons, and records the outcome: sent;
failed for good (a customer who blocked the bot, a text that cannot render: counted and logged once);
or, for a fault that means "not delivered" (a flood wait, a server error), back to pending with a
backoff. A clean stop lets the message in flight finish (:func:`~tenant_bot.wakeable.uninterrupted`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from tenant_bot.booking import BookingCore
from tenant_bot.booking.models import BusinessSettings, Clock
from tenant_bot.booking.outreach import ReviewRequest
from tenant_bot.courier import Message
from tenant_bot.delivery import Outcome
from tenant_bot.notifications import Notifier
from tenant_bot.outreach_views import stars_keyboard
from tenant_bot.wakeable import WakeableLoop, uninterrupted

log = logging.getLogger(__name__)

REVIEW_REQUEST = "review_request"
TICK_SECONDS = 5.0
RECHECK_SECONDS = 300.0
MAX_PER_PASS = 200


class ReviewRequester(WakeableLoop):
    """Asks customers to rate their visits (see the module docstring)."""

    name = "reviews"

    def __init__(
        self,
        *,
        core: BookingCore,
        notifier: Notifier,
        clock: Clock,
        interval: float = TICK_SECONDS,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        super().__init__(clock=clock, interval=interval, recheck=recheck)
        self.core = core
        self.notifier = notifier

    async def tick(self) -> datetime | None:
        reviews = self.core.reviews
        skipped, interrupted = await reviews.prepare()
        if interrupted:
            log.warning(
                "review requests interrupted mid-send set aside", extra={"count": interrupted}
            )
        settings: BusinessSettings | None = None
        asked = 0
        for _ in range(MAX_PER_PASS):
            request = await reviews.claim(worker=self.worker_id)
            if request is None:
                break
            settings = settings or await self.core.catalogue.get_settings()
            outcome = await uninterrupted(self._ask(request, settings))
            asked += outcome is Outcome.SENT
        if asked or skipped:
            log.info("review requests sent", extra={"sent": asked, "skipped": skipped})
        return await reviews.next_due()

    async def _ask(self, request: ReviewRequest, settings: BusinessSettings) -> Outcome:
        details = request.details
        texts = self.notifier.texts
        locale = (
            details.customer_locale
            if details.customer_locale in texts.locales
            else texts.default_locale
        )
        booking_id = details.booking.id

        def render() -> Message:
            day = details.booking.starts_at.astimezone(settings.zone).date()
            text = texts(
                locale,
                "review_request",
                business=settings.business_name or "—",
                service=details.service_name,
                staff=details.staff_name,
                day=texts.day(locale, day),
            )
            return text, stars_keyboard(texts, locale, booking_id)

        reviews = self.core.reviews
        if details.customer_telegram_id is None:  # booked by the owner for someone without a chat
            await reviews.settle(request, sent=False, error="the customer has no Telegram chat")
            return Outcome.FAILED
        result = await self.notifier.courier.attempt(details.customer_telegram_id, render)
        if result.outcome is Outcome.SENT:
            await reviews.settle(request, sent=True)
        elif result.outcome is Outcome.FAILED:
            self.notifier.tally.set_aside(REVIEW_REQUEST, booking_id, result.error)
            await reviews.settle(request, sent=False, error=result.error or "failed")
        else:
            delay = result.next_attempt_in(request.attempts)
            self.notifier.tally.deferred(REVIEW_REQUEST, booking_id, result.error, delay)
            await reviews.settle(
                request, sent=False, error=result.error, retry_at=self.clock() + delay
            )
        return result.outcome
