"""ReminderService: reminders created with bookings, sent at least once and normally exactly once.

Reminders are armed with the booking (the configured offsets still ahead, kept on the booking row;
migration 0003), re-armed when it is rescheduled and dropped with it; a reminder's row is written when
it falls due and is claimed. Senders — any number of bot processes — loop::

    for reminder in await core.reminders.claim_due(worker="bot-1"):
        await send(reminder)                       # the Telegram message
        await core.reminders.mark_sent(reminder.id, reminder.claim_token)

A claim is a lease: a sender that dies after claiming leaves the reminder to be claimed again once the
lease expires, so none is lost. A send that fails for a passing reason is released with the time of
its next attempt (a backoff, never every tick); one that can never succeed (Telegram refuses the chat,
the text cannot be rendered) is marked ``failed`` with its error and is not claimed again. A sender that outlives its lease (a very slow send) may race a second
sender; :meth:`mark_sent` then returns False for the late one. Keep the lease well above send time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tenant_bot.booking.claims import check_batch, claim_token
from tenant_bot.booking.db import Database
from tenant_bot.booking.models import ClaimedReminder, Clock, utc_now
from tenant_bot.booking.repositories import reminders as repo

DEFAULT_LEASE = timedelta(minutes=5)
ERROR_MAX_CHARS = 500


class ReminderService:
    """Claims due reminders for sending and settles them."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def claim_due(
        self, *, worker: str = "", limit: int = 50, lease: timedelta = DEFAULT_LEASE
    ) -> list[ClaimedReminder]:
        """Claim up to ``limit`` reminders that are due; each carries the booking's details."""
        check_batch(limit, lease)
        now = self._clock()
        token = claim_token(worker)
        async with self._db.transaction() as conn:
            claimed = await repo.claim_due(
                conn, now=now, lease_until=now + lease, token=token, limit=limit
            )
        return [
            ClaimedReminder(
                id=rid,
                offset_minutes=offset,
                due_at=due,
                claim_token=token,
                details=details,
                attempts=attempts,
            )
            for rid, offset, due, attempts, details in claimed
        ]

    async def mark_sent(self, reminder_id: int, claim_token: str) -> bool:
        """Record the reminder as sent; False if the claim was lost (lease expired and re-claimed)."""
        async with self._db.connection() as conn:
            return await repo.mark_sent(
                conn, reminder_id=reminder_id, token=claim_token, now=self._clock()
            )

    async def release(
        self,
        reminder_id: int,
        claim_token: str,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Give a claimed reminder back (sending failed for a passing reason); no sender claims it
        again before ``retry_at`` (None: at once). ``error`` is kept as its ``last_error``."""
        async with self._db.connection() as conn:
            return await repo.release(
                conn,
                reminder_id=reminder_id,
                token=claim_token,
                retry_at=retry_at,
                error=None if error is None else error[:ERROR_MAX_CHARS],
            )

    async def mark_failed(self, reminder_id: int, claim_token: str, *, error: str) -> bool:
        """Set the reminder aside for good: it can never be delivered (``error`` says why)."""
        async with self._db.connection() as conn:
            return await repo.mark_failed(
                conn,
                reminder_id=reminder_id,
                token=claim_token,
                error=error[:ERROR_MAX_CHARS],
                now=self._clock(),
            )

    async def expire_stale(self) -> int:
        """Cancel reminders that can no longer be useful (booking started or not active)."""
        async with self._db.connection() as conn:
            return await repo.expire_stale(conn, now=self._clock())

    async def next_due(self) -> datetime | None:
        """When the next reminder or completion card falls due (maybe already past: due now), or
        None when nothing is waiting. A sender sleeps until then instead of polling the database."""
        async with self._db.connection() as conn:
            return await repo.next_due(conn, now=self._clock())
