"""BookingService: book, cancel, reschedule and move bookings through their states, race-free.

How the guarantees hold under concurrency:

- Overlaps: the database refuses them (exclusion constraints on the staff member's occupied range, per
  seat and per session); this service only translates the refusal into :class:`SlotTaken`.
- Seats (capacity > 1): the lowest free seat is taken; a concurrent taker of the same seat makes the
  insert wait and fail, and the seat choice is retried under a savepoint with a fresh snapshot.
- The per-customer limit: the customer's row is locked first, so one customer's bookings queue and the
  active-booking count in the insert statement is exact.
- Idempotency: the key is inserted with the booking; a repeat fails on the slot or on the key and then
  finds the first booking by its key.
- Reschedule is one row update in one transaction: the new time is taken and the old one freed together,
  or nothing changes.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, date, datetime, timedelta

import asyncpg

from tenant_bot.booking import slots as engine
from tenant_bot.booking.availability import Context, load_context
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import (
    BookingError,
    Inactive,
    InvalidInput,
    LimitReached,
    NotFound,
    SlotTaken,
    SlotUnavailable,
    StaffCannotServe,
    TooLate,
)
from tenant_bot.booking.models import (
    Actor,
    ActorKind,
    Booking,
    BookingStatus,
    Clock,
    utc_now,
)
from tenant_bot.booking.repositories import bookings as repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import customers as customers_repo
from tenant_bot.booking.transitions import TransitionsMixin

log = logging.getLogger(__name__)

_SEAT_RACE = "bookings_no_overlap"


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "must be a time zone aware datetime")
    return value


class BookingService(TransitionsMixin):
    """The booking rules. Every method is one transaction; errors are :class:`BookingError`."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

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
    ) -> Booking:
        """Book ``start`` for the customer; ``staff_id`` None picks the least-booked free one.

        ``actor`` None means the customer themself (every rule applies); :meth:`Actor.owner` books on
        the owner's behalf (no notice, horizon, grid or limit rules, confirmed at once). A repeated
        ``idempotency_key`` of the same customer returns the first booking instead of a new one.
        """
        actor = actor or Actor(ActorKind.CUSTOMER)
        start = _aware(start, "start")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
            raise InvalidInput("idempotency_key", "must be 1-200 characters")
        if len(comment) > 1000:
            raise InvalidInput("comment", "must be at most 1000 characters")
        try:
            return await self._book(
                customer_id=customer_id,
                service_id=service_id,
                start=start,
                staff_id=staff_id,
                actor=actor,
                idempotency_key=idempotency_key,
                comment=comment,
            )
        except BookingError:
            if idempotency_key is not None:
                async with self._db.connection() as conn:
                    existing = await repo.find_by_idempotency_key(
                        conn, customer_id, idempotency_key
                    )
                if existing is not None:
                    return existing
            raise

    async def _book(
        self,
        *,
        customer_id: int,
        service_id: int,
        start: datetime,
        staff_id: int | None,
        actor: Actor,
        idempotency_key: str | None,
        comment: str,
    ) -> Booking:
        now = self._clock()
        by_customer = actor.is_customer
        async with self._db.transaction() as conn:
            if by_customer and not await customers_repo.lock_customer(conn, customer_id):
                raise NotFound("no such customer", entity="customer", id=customer_id)
            ctx = await _context_around(conn, service_id, staff_id, start)
            await _check_staff(conn, ctx, staff_id)
            day = start.astimezone(ctx.rules.zone).date()
            members = sorted(
                ctx.staff, key=lambda m: ctx.load.get((m.staff_id, day), 0)
            )  # stable: ties keep display order, so "anyone" is fair and predictable
            failures: list[SlotUnavailable] = []
            retry_safe = len(members) > 1 or ctx.service.capacity > 1
            for member in members:
                try:
                    engine.check_start(
                        member,
                        rules=ctx.rules,
                        service=ctx.spec,
                        business_exceptions=ctx.business_exceptions,
                        start=start,
                        now=now,
                        enforce_customer_rules=by_customer,
                    )
                    return await self._insert(
                        conn,
                        ctx=ctx,
                        staff_id=member.staff_id,
                        customer_id=customer_id,
                        start=start,
                        actor=actor,
                        now=now,
                        idempotency_key=idempotency_key,
                        comment=comment,
                        local_day=day,
                        savepoint=retry_safe,
                    )
                except SlotUnavailable as exc:
                    failures.append(exc)
            taken = [f for f in failures if isinstance(f, SlotTaken)]
            raise (taken or failures)[0]

    async def _insert(
        self,
        conn: asyncpg.Connection,
        *,
        ctx: Context,
        staff_id: int,
        customer_id: int,
        start: datetime,
        actor: Actor,
        now: datetime,
        idempotency_key: str | None,
        comment: str,
        local_day: date,
        savepoint: bool,
    ) -> Booking:
        settings, service = ctx.settings, ctx.service
        end = start + timedelta(minutes=service.duration_minutes)
        occupied = (
            start - timedelta(minutes=settings.buffer_before_minutes),
            end + timedelta(minutes=settings.buffer_after_minutes),
        )
        pending = actor.is_customer and settings.confirmation_required
        for _ in range(service.capacity + 1):
            seat = await _free_seat(conn, staff_id, service.id, service.capacity, start)
            try:
                async with _maybe_savepoint(conn, savepoint):
                    booking = await repo.insert_booking(
                        conn,
                        customer_id=customer_id,
                        service_id=service.id,
                        staff_id=staff_id,
                        starts_at=start,
                        ends_at=end,
                        occupied=occupied,
                        seat=seat,
                        status=BookingStatus.PENDING if pending else BookingStatus.CONFIRMED,
                        comment=comment,
                        now=now,
                        limit=settings.max_active_per_customer if actor.is_customer else None,
                        actor=actor.kind,
                        actor_id=actor.telegram_user_id,
                        reminder_offsets=settings.reminder_offsets_minutes,
                        idempotency_key=idempotency_key,
                        local_day=local_day,
                    )
            except SlotTaken as exc:
                if service.capacity > 1 and exc.details.get("constraint") == _SEAT_RACE:
                    continue  # another transaction took this seat first; look again
                raise
            if booking is None:
                raise LimitReached(
                    "the customer has the maximum of active bookings",
                    limit=settings.max_active_per_customer,
                )
            log.info(
                "booking created",
                extra={"booking_id": booking.id, "staff_id": staff_id, "seat": seat},
            )
            return booking
        raise SlotTaken("every seat is taken")

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
        now = self._clock()
        async with self._db.transaction() as conn:
            booking = await self._locked(conn, booking_id, actor)
            self._require_active(booking)
            settings = await catalogue_repo.get_settings(conn)
            if actor.is_customer and booking.starts_at - now < timedelta(
                minutes=settings.reschedule_notice_minutes
            ):
                raise TooLate("too late to reschedule", minutes=settings.reschedule_notice_minutes)
            staff_id = new_staff_id or booking.staff_id
            if new_start == booking.starts_at and staff_id == booking.staff_id:
                return booking
            ctx = await _context_around(
                conn, booking.service_id, staff_id, new_start, exclude_booking_id=booking.id
            )
            await _check_staff(conn, ctx, staff_id)
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
            occupied = (
                new_start - timedelta(minutes=ctx.settings.buffer_before_minutes),
                end + timedelta(minutes=ctx.settings.buffer_after_minutes),
            )
            capacity = ctx.service.capacity
            for _ in range(capacity + 1):
                seat = await _free_seat(conn, staff_id, booking.service_id, capacity, new_start)
                try:
                    async with _maybe_savepoint(conn, capacity > 1):
                        moved = await repo.move_booking(
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
                except SlotTaken as exc:
                    if capacity > 1 and exc.details.get("constraint") == _SEAT_RACE:
                        continue
                    raise
                return moved
            raise SlotTaken("every seat is taken")

    async def purge_idempotency_keys(self, *, older_than: timedelta = timedelta(days=7)) -> int:
        """Forget idempotency keys older than ``older_than``; returns how many were removed."""
        async with self._db.connection() as conn:
            return await repo.purge_idempotency_keys(conn, self._clock() - older_than)


async def _context_around(
    conn: asyncpg.Connection,
    service_id: int,
    staff_id: int | None,
    start: datetime,
    *,
    exclude_booking_id: int | None = None,
) -> Context:
    # The UTC date +-1 covers the local date of ``start`` in any zone.
    utc_day = start.astimezone(UTC).date()
    ctx = await load_context(
        conn,
        service_id=service_id,
        staff_id=staff_id,
        day_from=utc_day - timedelta(days=1),
        day_to=utc_day + timedelta(days=1),
        exclude_booking_id=exclude_booking_id,
    )
    if not ctx.service.active:
        raise Inactive("the service is switched off", entity="service", id=service_id)
    return ctx


async def _check_staff(conn: asyncpg.Connection, ctx: Context, staff_id: int | None) -> None:
    """Explain why no staff member is a candidate (missing, switched off, other services)."""
    if ctx.staff:
        return
    if staff_id is None:
        raise StaffCannotServe("nobody provides this service", service_id=ctx.service.id)
    staff = await catalogue_repo.get_staff(conn, staff_id)
    if staff is None:
        raise NotFound("no such staff member", entity="staff", id=staff_id)
    if not staff.active:
        raise Inactive("the staff member is switched off", entity="staff", id=staff_id)
    raise StaffCannotServe("the staff member does not provide this service", staff_id=staff_id)


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


def _maybe_savepoint(
    conn: asyncpg.Connection, enabled: bool
) -> AbstractAsyncContextManager[asyncpg.Connection]:
    # A savepoint costs two round trips; it is needed only when a failure is followed by a retry.
    return Database.savepoint(conn) if enabled else nullcontext(conn)
