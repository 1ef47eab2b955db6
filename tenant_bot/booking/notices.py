"""NoticeOutbox: the new-booking notices, owed from the booking's commit and sent exactly once.

A booking is written with its notices armed (``bookings.notice_armed``, migration 0070), in the same
transaction and the same statement (``book_slots``; for a booking held for a deposit, the payment's
statement). Senders — the background loop of any number of bot processes — then loop::

    await core.notices.hand_out(owner_ids=[...])     # armed bookings -> one row per recipient
    for notice in await core.notices.claim(worker="bot-1"):
        if await core.notices.start_sending(notice):  # the row says 'sending'
            ...                                       # the one Telegram call
            await core.notices.settle(notice, "sent")

so a notice survives a database refusal after the commit, a bot restart, Telegram being away. Once
per recipient: the row's primary key makes one notice one row, a claim is a lease with a token (two
loops never hold one row), and a sender settles only its own claim. A sender that dies after
claiming but before the call leaves the row ``pending``: claimed again once the lease runs out. One
that dies during the call leaves it ``sending``: it may have been delivered, so the next loop sets it
aside (``failed``, interrupted; counted and logged) rather than send it twice. A passing failure
(timeout, 5xx, 429) puts the row back with the time of its next attempt; a failure for good (the chat
is gone, the text cannot render) sets it aside with its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tenant_bot.booking.claims import check_batch, claim_token
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import BookingDetails, Clock, utc_now
from tenant_bot.booking.repositories import notices as repo

DEFAULT_LEASE = timedelta(minutes=5)
# The checkout shows the customer their booking (and marks it shown) within seconds of the commit;
# the durable copy of that confirmation is sent only if it is still unmarked this long after.
CUSTOMER_GRACE = timedelta(seconds=60)
ERROR_MAX_CHARS = 500
INTERRUPTED = "interrupted: the sender stopped during the Telegram call (maybe delivered)"


@dataclass(frozen=True, slots=True)
class ClaimedNotice:
    """One notice to one recipient, claimed for sending.

    ``kind`` is ``new_booking`` (``role`` owner or staff) or ``booked`` (``role`` customer: the
    customer's own confirmation); ``attempts`` counts claims from 1."""

    booking_id: int
    kind: str
    chat_id: int
    role: str
    attempts: int
    claim_token: str
    details: BookingDetails

    @property
    def key(self) -> repo.NoticeKey:
        return (self.booking_id, self.kind, self.chat_id)


class NoticeOutbox:
    """Hands out, claims and settles the durable booking notices."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def hand_out(
        self, *, owner_ids: list[int], limit: int = 200, customer_grace: timedelta = CUSTOMER_GRACE
    ) -> int:
        """Write the recipients' rows of up to ``limit`` armed bookings (and disarm them)."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "must be 1-1000")
        async with self._db.transaction() as conn:
            return await repo.hand_out(
                conn,
                owner_ids=list(owner_ids),
                now=self._clock(),
                customer_grace=customer_grace,
                limit=limit,
            )

    async def set_aside_interrupted(self) -> list[repo.NoticeKey]:
        """Set aside the notices whose sender died during the call; returns their keys."""
        async with self._db.connection() as conn:
            return await repo.set_aside_interrupted(conn, now=self._clock(), error=INTERRUPTED)

    async def claim(
        self, *, worker: str = "", limit: int = 50, lease: timedelta = DEFAULT_LEASE
    ) -> list[ClaimedNotice]:
        """Claim up to ``limit`` notices that are due, each with its booking's details."""
        check_batch(limit, lease)
        now = self._clock()
        token = claim_token(worker)
        async with self._db.transaction() as conn:
            rows = await repo.claim(
                conn, now=now, lease_until=now + lease, token=token, limit=limit
            )
        claimed = []
        for row in rows:
            (booking_id, kind, chat_id), role, attempts, details = repo.details_of(row)
            claimed.append(ClaimedNotice(booking_id, kind, chat_id, role, attempts, token, details))
        return claimed

    async def start_sending(self, notice: ClaimedNotice) -> bool:
        """Mark the notice ``sending`` right before its Telegram call; False: the claim was lost
        (its lease ran out and another sender has it), so do not send."""
        async with self._db.connection() as conn:
            return await repo.start_sending(conn, notice.key, notice.claim_token)

    async def settle(self, notice: ClaimedNotice, state: str, *, error: str | None = None) -> bool:
        """``sent``, ``failed`` (set aside with ``error``) or ``skipped``; False: claim lost."""
        if state not in ("sent", "failed", "skipped"):
            raise InvalidInput("state", "must be sent, failed or skipped")
        async with self._db.connection() as conn:
            return await repo.settle(
                conn,
                notice.key,
                notice.claim_token,
                state=state,
                now=self._clock(),
                error=None if error is None else error[:ERROR_MAX_CHARS],
            )

    async def retry_later(
        self, notice: ClaimedNotice, *, retry_at: datetime, error: str | None
    ) -> bool:
        """Put the notice back after a passing fault; nobody claims it before ``retry_at``."""
        async with self._db.connection() as conn:
            return await repo.retry_later(
                conn,
                notice.key,
                notice.claim_token,
                retry_at=retry_at,
                error=None if error is None else error[:ERROR_MAX_CHARS],
            )

    async def next_due(self) -> datetime | None:
        """When a notice could next be handed out or claimed (None: nothing is waiting)."""
        async with self._db.connection() as conn:
            return await repo.next_due(conn)
