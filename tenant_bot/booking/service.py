"""BookingService: book, cancel, reschedule and move bookings through their states, race-free.

How the guarantees hold under concurrency (see also :mod:`.placement`):

- Overlaps: the database refuses them (an exclusion constraint on the staff member's occupied range:
  overlapping active bookings are seats of one session; a unique index: a seat of a session is sold
  once); this service only translates the refusal into :class:`SlotTaken`.
- Writers of one staff member's bookings are serialised by an advisory transaction lock (taken by
  ``book_slots`` and by reschedule), so the exclusion check never waits on an uncommitted row (which
  would deadlock), and the lowest free seat of a session (capacity > 1) is read and taken atomically.
- The per-customer limit: ``book_slots`` locks the customer's row before counting, so one customer's
  bookings queue and the count is exact.
- Group commit: concurrent bookings go to the database together (:mod:`.batching`), each in its own
  subtransaction, so they share a round trip and a commit but never each other's failures.
- Idempotency: the key is inserted with the booking; a repeat fails on the slot, the limit or the key
  and then finds the first booking by its key.
- Reschedule is one row update in one transaction: the new time is taken and the old one freed together,
  or nothing changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg

from tenant_bot.booking import slots as engine
from tenant_bot.booking.availability import Context, load_context
from tenant_bot.booking.batching import BookingWriter
from tenant_bot.booking.catalogue_cache import CatalogueCache
from tenant_bot.booking.db import Database, retry_busy
from tenant_bot.booking.errors import (
    BookingError,
    Inactive,
    InvalidInput,
    NotFound,
    SlotTaken,
    SlotUnavailable,
    StorageBusy,
    StorageError,
    StorageUnavailable,
    TooLate,
)
from tenant_bot.booking.models import (
    Actor,
    ActorKind,
    Booking,
    BookingDetails,
    BookingStatus,
    Clock,
    DaySchedule,
    DepositRule,
    HistoryEntry,
    utc_now,
)
from tenant_bot.booking.no_shows import NoShowService
from tenant_bot.booking.placement import Request, explain_no_staff, occupied_range, place
from tenant_bot.booking.repositories import bookings as repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import customers as customers_repo
from tenant_bot.booking.slots import to_utc
from tenant_bot.booking.transitions import BookingStateMachine, lock_booking, require_active

log = logging.getLogger(__name__)

# Pauses between the reads of a booking just committed (BookingService.read_back): three reads over
# about a second, then the customer is told the booking is most likely made.
READ_BACK_PAUSES = (0.25, 0.75)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "must be a time zone aware datetime")
    return value


class BookingService:
    """The booking rules. Every method is one transaction; errors are :class:`BookingError`.

    Status changes (cancel, confirm, done, no-show) are the state machine's
    (:class:`~.transitions.BookingStateMachine`); this service hands them on, so handlers keep one
    object to call."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = utc_now,
        cache: CatalogueCache | None = None,
        no_shows: NoShowService | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache or CatalogueCache()
        self._no_shows = no_shows or NoShowService(db, cache=self._cache, clock=clock)
        self._writer = BookingWriter(db, clock=clock)
        self._states = BookingStateMachine(db, clock=clock)
        # Called after a booking is made, moved or confirmed (the background work's early wake-up).
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def book(
        self,
        *,
        customer_id: int,
        service_id: int,
        start: datetime,
        staff_id: int | None = None,
        actor: Actor | None = None,
        idempotency_key: str | None = None,
        comment: str = "",
        deposit_rule: DepositRule | None = None,
        enforce_limit: bool = False,
    ) -> Booking:
        """Book ``start`` for the customer; ``staff_id`` None picks the least-booked free one.

        A customer's booking of a service with a deposit (or with ``deposit_rule``, which replaces
        the service's own rule for this booking: ``DepositRule.full()``, or ``DepositRule()`` for
        none) is written pending and awaiting payment, its seat held for the business's hold time,
        when the business takes payments (``deposits.settings()``); else as ever. A customer the
        owner's no-show rule asks a deposit of (``no_shows.requires_deposit``) pays the service's
        deposit, or the full price for a service without one.

        ``actor`` None means the customer themself (every rule applies, the owner's no-show block
        too: :class:`~.errors.CustomerBlocked`); :meth:`Actor.owner` books on the owner's behalf
        (no notice, horizon, grid or no-show rules, confirmed at once; the per-customer limit and a
        customer blocked in the client book only with ``enforce_limit``, which the owner's menu
        passes unless the owner overrides the limit). Overlaps and capacity bind everyone alike. A
        customer without Telegram (booked by phone or at the door) gets no reminders. A repeated
        ``idempotency_key`` of the same customer returns the first booking instead of a new one.
        """
        actor = actor or Actor(ActorKind.CUSTOMER)
        start = _aware(start, "start")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
            raise InvalidInput("idempotency_key", "must be 1-200 characters")
        if len(comment) > 1000:
            raise InvalidInput("comment", "must be at most 1000 characters")
        request = Request(
            customer_id=customer_id,
            service_id=service_id,
            staff_id=staff_id,
            start=start,
            actor=actor,
            idempotency_key=idempotency_key,
            comment=comment,
            now=self._clock(),
            deposit_rule=deposit_rule,
            enforce_limit=enforce_limit,
            remind=actor.is_customer or await self._has_chat(customer_id),
        )
        if actor.is_customer:
            await self._no_shows.check_may_book(customer_id)
            # the owner's no-show rule may ask this customer a deposit (no query while it is off)
            if deposit_rule is None and await self._no_shows.requires_deposit(customer_id):
                request = dataclasses.replace(request, deposit_required=True)

        try:
            booking = await retry_busy(lambda: place(self._db, self._cache, self._writer, request))
        except BookingError as exc:
            # a repeat of a booking that went through finds it; but with the database away the
            # lookup would only wait out the same outage a second time before the user is told
            if idempotency_key is not None and not _storage_away(exc):
                async with self._db.connection() as conn:
                    existing = await repo.find_by_idempotency_key(
                        conn, customer_id, idempotency_key
                    )
                if existing is not None:
                    return existing
            raise
        self._changed()
        return booking

    async def walk_in(
        self,
        *,
        customer_id: int,
        service_id: int,
        actor: Actor,
        idempotency_key: str | None = None,
        staff_id: int | None = None,
    ) -> Booking:
        """Book someone at the door right now, with whoever is free (or with ``staff_id``: a
        staff member booking a walk-in with themselves): the slot of the grid that holds this
        minute (10:00 at 10:07) if it is free, else from this minute on. The same rules as
        :meth:`book` for the owner (overlaps and capacity; no limit: walk-ins share one
        customer); raises the reason nobody is free."""
        now = self._clock()
        async with self._db.connection() as conn:
            settings = await catalogue_repo.get_settings(conn)
        local = now.astimezone(settings.zone).replace(second=0, microsecond=0)
        minute = local.hour * 60 + local.minute
        on_grid = local - timedelta(minutes=minute % settings.slot_step_minutes)
        failure: BookingError | None = None
        for start in dict.fromkeys((on_grid, local)):
            try:
                return await self.book(
                    customer_id=customer_id,
                    service_id=service_id,
                    start=start,
                    staff_id=staff_id,
                    actor=actor,
                    idempotency_key=idempotency_key,
                )
            except SlotUnavailable as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def _has_chat(self, customer_id: int) -> bool:
        """Whether the bot can write to the customer (an owner's booking asks; customers can)."""
        async with self._db.connection() as conn:
            customer = await customers_repo.get_customer(conn, customer_id)
        return customer is not None and customer.telegram_user_id is not None

    async def reschedule(
        self,
        booking_id: int,
        *,
        new_start: datetime,
        actor: Actor,
        new_staff_id: int | None = None,
    ) -> Booking:
        """Move an active booking to ``new_start`` (and ``new_staff_id``, default: the same staff).

        Customers need ``reschedule_notice_minutes`` before the current start and every booking rule
        for the new one. Atomic: on any error the booking keeps its old time.
        """
        new_start = _aware(new_start, "new_start")
        booking = await retry_busy(
            lambda: self._reschedule(booking_id, new_start, actor=actor, new_staff_id=new_staff_id)
        )
        self._changed()
        return booking

    async def _reschedule(
        self, booking_id: int, new_start: datetime, *, actor: Actor, new_staff_id: int | None
    ) -> Booking:
        now = self._clock()
        async with self._db.transaction() as conn:
            booking = await lock_booking(conn, booking_id, actor)
            require_active(booking)
            settings = await catalogue_repo.get_settings(conn)
            if actor.is_customer and booking.starts_at - now < timedelta(
                minutes=settings.reschedule_notice_minutes
            ):
                raise TooLate("too late to reschedule", minutes=settings.reschedule_notice_minutes)
            staff_id = new_staff_id or booking.staff_id
            if new_start == booking.starts_at and staff_id == booking.staff_id:
                return booking
            ctx = await _context_around(conn, booking.service_id, staff_id, new_start, booking.id)
            await explain_no_staff(conn, ctx, staff_id)
            engine.check_start(
                ctx.staff[0],
                rules=ctx.rules,
                service=ctx.spec,
                business_exceptions=ctx.business_exceptions,
                start=new_start,
                now=now,
                enforce_customer_rules=actor.is_customer,
            )
            end = new_start + timedelta(minutes=ctx.service.duration_minutes)
            occupied = occupied_range(ctx.settings, new_start, ctx.service.duration_minutes)
            # with the staff member's writers serialised, the seat read below stays true until commit
            await repo.lock_staff_writes(conn, staff_id)
            seat = await _free_seat(
                conn, staff_id, booking.service_id, ctx.service.capacity, new_start
            )
            return await repo.move_booking(
                conn,
                booking,
                staff_id=staff_id,
                starts_at=new_start,
                ends_at=end,
                occupied=occupied,
                seat=seat,
                now=now,
                actor=actor.kind,
                actor_id=actor.telegram_user_id,
                reminder_offsets=ctx.settings.reminder_offsets_minutes,
            )

    async def cancel(self, booking_id: int, *, actor: Actor, reason: str | None = None) -> Booking:
        """Cancel an active booking; customers need ``cancel_notice_minutes`` before the start.

        Cancelling a cancelled booking returns it unchanged (a repeated tap is harmless). Afterwards
        the bot may offer the freed time to ``waitlist.candidates_for(booking)``.
        """
        return await self._states.cancel(booking_id, actor=actor, reason=reason)

    async def transition(
        self, booking_id: int, to: BookingStatus, *, actor: Actor, reason: str | None = None
    ) -> Booking:
        """Move a booking to ``to`` if the state machine allows it (owner and system only, except
        cancelling, which follows :meth:`cancel`'s rules for customers)."""
        booking = await self._states.transition(booking_id, to, actor=actor, reason=reason)
        if to is BookingStatus.DONE:
            self._changed()  # its review request falls due soon
        return booking

    async def confirm(self, booking_id: int, *, actor: Actor) -> Booking:
        """The owner confirms a pending booking."""
        booking = await self._states.transition(booking_id, BookingStatus.CONFIRMED, actor=actor)
        self._changed()
        return booking

    async def mark_done(self, booking_id: int, *, actor: Actor) -> Booking:
        """The customer came."""
        return await self.transition(booking_id, BookingStatus.DONE, actor=actor)

    async def mark_no_show(self, booking_id: int, *, actor: Actor) -> Booking:
        """The customer did not come."""
        return await self._states.transition(booking_id, BookingStatus.NO_SHOW, actor=actor)

    async def read_back(self, booking_id: int) -> BookingDetails | None:
        """A booking just committed, with its names, for the screen that confirms it: read again
        after a short pause while the database refuses (a pooler queue under overload, a brief
        outage), at most :data:`READ_BACK_PAUSES` + 1 times; None if it still cannot be read. The
        booking exists either way: None tells the caller to say so honestly, not "unavailable".
        Any storage fault counts (a connection terminated under the driver can surface as an
        unexpected one), not only :class:`StorageUnavailable`."""
        for pause in (*READ_BACK_PAUSES, None):
            try:
                return await self.get(booking_id)
            except (StorageUnavailable, StorageError):
                if pause is None:
                    log.warning(
                        "booking committed but not read back", extra={"booking_id": booking_id}
                    )
                    return None
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def get(self, booking_id: int) -> BookingDetails:
        """One booking with names; raises :class:`NotFound`."""
        async with self._db.connection() as conn:
            found = await repo.get_details(conn, booking_id)
        if found is None:
            raise NotFound("no such booking", entity="booking", id=booking_id)
        return found

    async def for_customer(
        self, customer_id: int, *, include_past: bool = False
    ) -> list[BookingDetails]:
        """The customer's active bookings that have not ended (or, with ``include_past``, all)."""
        async with self._db.connection() as conn:
            if include_past:
                return await repo.list_details(conn, customer_id=customer_id)
            return await repo.list_details(
                conn, customer_id=customer_id, active_only=True, ends_after=self._clock()
            )

    async def for_day(self, day: date, *, staff_id: int | None = None) -> list[BookingDetails]:
        """Every booking starting on local ``day`` (the owner's day view), all statuses."""
        async with self._db.connection() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
            return await repo.list_details(
                conn,
                staff_id=staff_id,
                starts_from=to_utc(day, 0, zone),
                starts_before=to_utc(day, 1440, zone),
            )

    async def upcoming(self, *, until: datetime | None = None) -> list[BookingDetails]:
        """Active bookings from now until ``until`` (default: a week)."""
        now = self._clock()
        async with self._db.connection() as conn:
            return await repo.list_details(
                conn,
                active_only=True,
                starts_from=now,
                starts_before=until or now + timedelta(days=7),
            )

    async def history(self, booking_id: int) -> list[HistoryEntry]:
        """Every recorded change of the booking, oldest first."""
        async with self._db.connection() as conn:
            return await repo.history(conn, booking_id)

    async def day_schedule(self, day: date, *, staff_id: int | None = None) -> DaySchedule:
        """The owner's view of local ``day``: the bookings that count, and the cancelled ones."""
        return DaySchedule.of(day, await self.for_day(day, staff_id=staff_id))

    async def purge_idempotency_keys(self, *, older_than: timedelta = timedelta(days=7)) -> int:
        """Forget idempotency keys older than ``older_than``; returns how many were removed."""
        async with self._db.connection() as conn:
            return await repo.purge_idempotency_keys(conn, self._clock() - older_than)


async def _context_around(
    conn: asyncpg.Connection,
    service_id: int,
    staff_id: int,
    start: datetime,
    exclude_booking_id: int,
) -> Context:
    utc_day = start.astimezone(UTC).date()  # +-1 day covers the local date in any zone
    ctx = await load_context(
        conn,
        service_id=service_id,
        staff_id=staff_id,
        day_from=utc_day - timedelta(days=1),
        day_to=utc_day + timedelta(days=1),
        exclude_booking_id=exclude_booking_id,
        slot_start=start,
    )
    if not ctx.service.active:
        raise Inactive("the service is switched off", entity="service", id=service_id)
    return ctx


async def _free_seat(
    conn: asyncpg.Connection, staff_id: int, service_id: int, capacity: int, start: datetime
) -> int:
    if capacity == 1:
        return 1
    taken = await repo.taken_seats(conn, staff_id=staff_id, service_id=service_id, starts_at=start)
    for seat in range(1, capacity + 1):
        if seat not in taken:
            return seat
    raise SlotTaken("every seat is taken", capacity=capacity)


def _storage_away(exc: BookingError) -> bool:
    """The database could not be reached (a busy collision is not that: it is retried)."""
    return isinstance(exc, StorageUnavailable) and not isinstance(exc, StorageBusy)
