"""ReviewService: one request after each visit marked "came", the customer's stars and comment,
the owner's hiding, and the ratings customers see.

A visit marked done gets its request from the database itself (a trigger, migration 0040; its
function in ``repeatable/booking.sql``), due at the later of the marking and the booking's end; no-shows never
get one. Senders (any number of bot processes) loop::

    await core.reviews.prepare()                  # skip unwanted, set aside interrupted ones
    while (request := await core.reviews.claim(worker="bot-1")) is not None:
        outcome = await send(request)             # the Telegram message
        await core.reviews.settle(request, sent=..., error=..., retry_at=...)

A claim moves the request to 'sending' with a token before anything is sent, so two senders never
ask twice; a sender that dies mid-send leaves it 'sending', and it is set aside as failed once its
claim is older than ``INTERRUPTED_AFTER`` (the message may have gone out: better once than twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tenant_bot.booking.claims import claim_token
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import Clock, utc_now
from tenant_bot.booking.outreach import (
    OutreachSettings,
    Rating,
    Ratings,
    Review,
    ReviewRequest,
)
from tenant_bot.booking.repositories import reviews as repo

INTERRUPTED_AFTER = timedelta(minutes=5)
COMMENT_MAX_CHARS = 1000
ERROR_MAX_CHARS = 500


class ReviewService:
    """Review requests, reviews and ratings of one tenant."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    # -- the owner's settings --

    async def settings(self) -> OutreachSettings:
        async with self._db.connection() as conn:
            return await repo.get_settings(conn)

    async def update_settings(
        self, *, reviews_enabled: bool | None = None, review_min_count: int | None = None
    ) -> OutreachSettings:
        """Turn review requests on/off; set how many visible reviews a rating needs (1-1000)."""
        if review_min_count is not None and not 1 <= review_min_count <= 1000:
            raise InvalidInput("review_min_count", "must be a whole number from 1 to 1000")
        async with self._db.connection() as conn:
            return await repo.update_settings(
                conn,
                reviews_enabled=reviews_enabled,
                review_min_count=review_min_count,
                now=self._clock(),
            )

    # -- requests (the sender's side) --

    async def prepare(self) -> tuple[int, int]:
        """Before claiming: settle as skipped the due requests that must not go out (reviews off,
        already reviewed) and set aside the ones a dead sender left mid-send. Returns both counts."""
        now = self._clock()
        async with self._db.connection() as conn:
            skipped = await repo.skip_unwanted(conn, now=now)
            interrupted = await repo.recover_interrupted(
                conn, claimed_before=now - INTERRUPTED_AFTER
            )
        return skipped, interrupted

    async def claim(self, *, worker: str = "") -> ReviewRequest | None:
        """The next due request, claimed for this sender alone; None when nothing is due."""
        token = claim_token(worker)
        async with self._db.transaction() as conn:
            claimed = await repo.claim_request(conn, now=self._clock(), token=token)
        if claimed is None:
            return None
        details, attempts = claimed
        return ReviewRequest(details=details, attempts=attempts, claim_token=token)

    async def settle(
        self,
        request: ReviewRequest,
        *,
        sent: bool,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record the outcome: sent, failed for good (``error``), or to be tried again from
        ``retry_at`` (only for faults that mean "not delivered": a flood wait, a server error)."""
        status = "sent" if sent else ("pending" if retry_at is not None else "failed")
        async with self._db.connection() as conn:
            return await repo.settle_request(
                conn,
                booking_id=request.details.booking.id,
                token=request.claim_token,
                status=status,
                now=self._clock(),
                error=None if error is None else error[:ERROR_MAX_CHARS],
                retry_at=retry_at,
            )

    async def next_due(self) -> datetime | None:
        """When the next pending request falls due (maybe already), or None."""
        async with self._db.connection() as conn:
            return await repo.next_due(conn)

    async def request_status(self, booking_id: int) -> str | None:
        """'pending' / 'sending' / 'sent' / 'failed' / 'skipped', or None (never requested)."""
        async with self._db.connection() as conn:
            return await repo.request_status(conn, booking_id)

    # -- the customer's side --

    async def rate(
        self, booking_id: int, *, customer_telegram_id: int, stars: int
    ) -> Review | None:
        """The customer's rating of their visit; None when it was already rated (the first tap
        wins) or the visit is not theirs or not marked "came"."""
        if not 1 <= stars <= 5:
            raise InvalidInput("stars", "must be 1 to 5")
        async with self._db.transaction() as conn:
            return await repo.add_review(
                conn,
                booking_id=booking_id,
                customer_telegram_id=customer_telegram_id,
                stars=stars,
                now=self._clock(),
            )

    async def comment(
        self, booking_id: int, *, customer_telegram_id: int, text: str
    ) -> Review | None:
        """Add the customer's words to their review (once; cut to 1000 characters); None when
        there is no such review of theirs or it already has a comment."""
        text = text.strip()[:COMMENT_MAX_CHARS]
        if not text:
            raise InvalidInput("comment", "must not be empty")
        async with self._db.connection() as conn:
            return await repo.set_comment(
                conn,
                booking_id=booking_id,
                customer_telegram_id=customer_telegram_id,
                comment=text,
                now=self._clock(),
            )

    # -- the owner's side and what customers see --

    async def hide(self, booking_id: int, *, hidden: bool = True) -> Review | None:
        """Hide a review from the ratings (or show it again); None when there is no such review."""
        async with self._db.transaction() as conn:
            return await repo.set_hidden(
                conn, booking_id=booking_id, hidden=hidden, now=self._clock()
            )

    async def get(self, booking_id: int) -> Review | None:
        async with self._db.connection() as conn:
            return await repo.get_review(conn, booking_id)

    async def latest(self, *, limit: int = 10) -> list[Review]:
        """The newest reviews, hidden ones included (the owner's list)."""
        async with self._db.connection() as conn:
            return await repo.latest(conn, limit=limit)

    async def ratings(self) -> Ratings:
        """The business's and each staff member's rating over visible reviews, each only once it
        has the owner's threshold of reviews (one small query over per-staff totals)."""
        async with self._db.connection() as conn:
            threshold, totals = await repo.ratings(conn)
        count = sum(t.reviews for t in totals)
        stars = sum(t.stars for t in totals)
        business = Rating(stars / count, count) if count >= threshold else None
        staff = {t.staff_id: Rating(t.average, t.reviews) for t in totals if t.reviews >= threshold}
        return Ratings(business=business, staff=staff)
