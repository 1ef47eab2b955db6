"""BroadcastService: the owner's mailings, sent durably, once per customer, and opt-outs.

The owner confirms a mailing (:meth:`create`): in one transaction the mailing and a 'pending' row per
customer of its audience as it is at that moment (opted-out customers left out). A sender — any bot
process — then loops::

    lease = await core.broadcasts.acquire(worker="bot-1")     # None: nothing to send, or taken
    for r in await core.broadcasts.due(lease, limit=50):
        if await core.broadcasts.claim(lease, r) != "sending":
            continue                          # opted out since (skipped) or taken
        ...send...                            # the Telegram message
        await core.broadcasts.settle(lease, r, state="sent")   # or blocked / failed / retry
    await core.broadcasts.finish(lease)       # done once nobody is left

Invariants (why nobody gets one mailing twice, and nobody is lost):

- A recipient moves 'pending' -> 'sending' under the sender's token *before* its message is sent,
  and only from 'pending': of two senders, one sends.
- Only faults that mean "not delivered" (a flood wait, a server error, a network error before an
  answer) put it back to 'pending', with a time before which it is not tried again.
- A row found 'sending' by the next lease holder belongs to a sender that died mid-send: it is set
  aside as failed ("interrupted"), never sent again — it may have been delivered.
- One sender per tenant at a time holds the lease (renewed every batch, ``LEASE`` long), so the
  bot's send rate stays its own whatever the number of processes; a dead holder's lease runs out and
  another process takes over where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tenant_bot.booking.claims import claim_token
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, NotFound
from tenant_bot.booking.models import Clock, utc_now
from tenant_bot.booking.outreach import (
    Audience,
    AudienceChoice,
    Broadcast,
    BroadcastCounts,
    Recipient,
    RecipientState,
)
from tenant_bot.booking.repositories import broadcasts as repo

LEASE = timedelta(seconds=60)
ERROR_MAX_CHARS = 500
TEXT_MAX_CHARS = 16000  # the owner's text as HTML (Telegram caps the visible text at 4096)
DAYS_MAX = 3650


@dataclass(frozen=True, slots=True)
class Lease:
    """The sending lease on one mailing, held by one sender (its ``token``)."""

    broadcast: Broadcast
    token: str


class BroadcastService:
    """Mailings of one tenant: audiences, creation, the sender's steps, reports, opt-outs."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    # -- the owner's side --

    @staticmethod
    def audience(
        kind: str, *, days: int | None = None, service_id: int | None = None
    ) -> AudienceChoice:
        """A valid audience or :class:`InvalidInput` saying what to fix."""
        try:
            audience = Audience(kind)
        except ValueError:
            raise InvalidInput("audience", "must be all, recent, lapsed or service") from None
        if audience in (Audience.RECENT, Audience.LAPSED):
            if days is None or not 1 <= days <= DAYS_MAX:
                raise InvalidInput("days", f"must be a whole number of days from 1 to {DAYS_MAX}")
            return AudienceChoice(audience, days=days)
        if audience is Audience.SERVICE:
            if not service_id:
                raise InvalidInput("service_id", "pick a service")
            return AudienceChoice(audience, service_id=service_id)
        return AudienceChoice(audience)

    async def count(self, choice: AudienceChoice) -> int:
        """How many customers the audience holds now (opted-out ones left out)."""
        async with self._db.connection() as conn:
            return await repo.count_audience(conn, choice, self._clock())

    async def create(
        self,
        *,
        draft_key: str,
        text: str,
        photo_file_id: str | None,
        choice: AudienceChoice,
        created_by: int,
    ) -> tuple[Broadcast, bool]:
        """Confirm a mailing: it and its recipients in one transaction. The same ``draft_key``
        again (a double tap) returns the first mailing and False."""
        if not text.strip() and not photo_file_id:
            raise InvalidInput("text", "write the text of the mailing (or send a photo)")
        if len(text) > TEXT_MAX_CHARS:
            raise InvalidInput("text", "is too long")
        async with self._db.transaction() as conn:
            return await repo.create(
                conn,
                draft_key=draft_key[:64],
                text=text,
                photo_file_id=photo_file_id,
                choice=choice,
                created_by=created_by,
                now=self._clock(),
            )

    async def show_progress_in(self, broadcast_id: int, *, chat_id: int, message_id: int) -> None:
        """Where the sender edits the mailing's progress (the owner's confirmation message)."""
        async with self._db.connection() as conn:
            await repo.set_progress_message(
                conn, broadcast_id, chat_id=chat_id, message_id=message_id
            )

    async def get(self, broadcast_id: int) -> Broadcast:
        async with self._db.connection() as conn:
            found = await repo.get(conn, broadcast_id)
        if found is None:
            raise NotFound("no such mailing", entity="broadcast", id=broadcast_id)
        return found

    async def recent(self, *, limit: int = 10) -> list[tuple[Broadcast, BroadcastCounts]]:
        """The newest mailings with their counts (the owner's list)."""
        async with self._db.connection() as conn:
            items = await repo.recent(conn, limit=limit)
            return [(item, await repo.counts(conn, item.id)) for item in items]

    async def counts(self, broadcast_id: int) -> BroadcastCounts:
        async with self._db.connection() as conn:
            return await repo.counts(conn, broadcast_id)

    async def cancel(self, broadcast_id: int) -> bool:
        """Stop a mailing being sent (those not reached yet are skipped); False if it had ended."""
        async with self._db.transaction() as conn:
            return await repo.cancel(conn, broadcast_id, now=self._clock())

    # -- the customer's side --

    async def opt_out(self, telegram_user_id: int) -> bool:
        """No more mailings for this customer (False: the user is no customer yet)."""
        async with self._db.connection() as conn:
            return await repo.set_opt_out(conn, telegram_user_id, out=True, now=self._clock())

    async def opt_in(self, telegram_user_id: int) -> bool:
        """Mailings again for this customer (False: the user is no customer)."""
        async with self._db.connection() as conn:
            return await repo.set_opt_out(conn, telegram_user_id, out=False, now=self._clock())

    async def opted_out(self, telegram_user_id: int) -> bool:
        async with self._db.connection() as conn:
            return await repo.is_opted_out(conn, telegram_user_id)

    # -- the sender's side --

    async def acquire(self, *, worker: str = "", token: str | None = None) -> Lease | None:
        """Take or renew (same ``token``) the tenant's sending lease; None when nothing is being
        sent or another sender holds it. A new holder first sets aside the rows its predecessor
        left mid-send."""
        token = token or claim_token(worker)
        now = self._clock()
        async with self._db.transaction() as conn:
            found = await repo.acquire_lease(conn, token=token, now=now, until=now + LEASE)
            if found is None:
                return None
            await repo.recover_interrupted(conn, found.id, token=token, now=now)
        return Lease(found, token)

    async def busy(self) -> bool:
        """Whether a mailing is being sent (by any process)."""
        async with self._db.connection() as conn:
            return await repo.any_sending(conn)

    async def release(self, lease: Lease) -> None:
        """Give the lease up (a clean stop), so another process need not wait for it to run out."""
        async with self._db.connection() as conn:
            await repo.release_lease(conn, lease.broadcast.id, token=lease.token)

    async def due(self, lease: Lease, *, limit: int = 50) -> list[Recipient]:
        """Pending recipients whose turn has come, in a stable order."""
        async with self._db.connection() as conn:
            return await repo.due_recipients(
                conn, lease.broadcast.id, now=self._clock(), limit=limit
            )

    async def next_retry(self, lease: Lease) -> datetime | None:
        async with self._db.connection() as conn:
            return await repo.next_retry(conn, lease.broadcast.id)

    async def claim(self, lease: Lease, recipient: Recipient) -> str | None:
        """'sending' (send it now), 'skipped' (opted out since), or None (not pending any more)."""
        async with self._db.connection() as conn:
            return await repo.claim(
                conn,
                lease.broadcast.id,
                recipient.customer_id,
                token=lease.token,
                now=self._clock(),
            )

    async def settle(
        self,
        lease: Lease,
        recipient: Recipient,
        *,
        state: RecipientState,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record a claimed recipient's outcome; ``RecipientState.PENDING`` with ``retry_at`` puts
        it back (a fault that means "not delivered")."""
        async with self._db.connection() as conn:
            return await repo.settle(
                conn,
                lease.broadcast.id,
                recipient.customer_id,
                token=lease.token,
                state=state.value,
                now=self._clock(),
                error=None if error is None else error[:ERROR_MAX_CHARS],
                not_before=retry_at,
            )

    async def finish(self, lease: Lease) -> bool:
        """Mark the mailing done once nobody is left to send to (False while some are)."""
        async with self._db.connection() as conn:
            return await repo.finish(conn, lease.broadcast.id, now=self._clock())

    async def claim_report(self, broadcast_id: int) -> bool:
        """True once per finished mailing: the caller sends its final report."""
        async with self._db.connection() as conn:
            return await repo.claim_report(conn, broadcast_id, now=self._clock())

    async def unreported(self, *, limit: int = 10) -> list[Broadcast]:
        """Finished mailings still owing their owner a final report."""
        async with self._db.connection() as conn:
            return await repo.unreported(conn, limit=limit)
