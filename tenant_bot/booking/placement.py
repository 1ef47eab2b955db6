"""Taking a slot: validate the rules, then let the :class:`~.batching.BookingWriter` take it.

Two ways to validate, one way to write:

- Fast path (a named staff member, a start within the cache window): the rules are checked against the
  in-process :class:`~.catalogue_cache.CatalogueCache` (no database round trip while it is warm);
  ``book_slots`` refuses the request if the catalogue changed since (``stale``), and we reload and check
  again.
- General path ("anyone", or an owner booking far from today): one snapshot read also returns the
  bookings around the slot and each staff member's load that day, so candidates are tried least-booked
  first; each try is its own write.

Either way the database decides overlaps (exclusion constraint and seat index) and the limit (customer
row lock in ``book_slots``), so concurrent requests cannot both win. No connection is held while a write
waits for its batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from tenant_bot.booking import slots as engine
from tenant_bot.booking.availability import Context, load_context
from tenant_bot.booking.batching import BookingWriter
from tenant_bot.booking.catalogue_cache import CatalogueCache, CatalogueView
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import (
    Conflict,
    CustomerBlocked,
    Inactive,
    LimitReached,
    NotFound,
    SlotTaken,
    SlotUnavailable,
    StaffCannotServe,
    StorageError,
)
from tenant_bot.booking.models import (
    Actor,
    Booking,
    BookingStatus,
    BusinessSettings,
    DepositKind,
    DepositRule,
    Service,
)
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories.bookings import SlotRequest

log = logging.getLogger(__name__)

STALE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Request:
    """A validated-input booking request."""

    customer_id: int
    service_id: int
    staff_id: int | None
    start: datetime
    actor: Actor
    idempotency_key: str | None
    comment: str
    now: datetime
    # None: the service's own deposit rule; a rule replaces it for this booking (issue 19)
    deposit_rule: DepositRule | None = None
    # the owner's no-show rule asks a deposit: the service's, or full prepayment if it has none
    deposit_required: bool = False
    # an owner's booking counts against the customer's limit only when asked to (customers' always do)
    enforce_limit: bool = False
    # reminders need a chat: a customer booked by phone or at the door gets none
    remind: bool = True


async def place(
    db: Database, cache: CatalogueCache, writer: BookingWriter, req: Request
) -> Booking:
    """Book the request's slot or raise why not (a :class:`BookingError`)."""
    if req.staff_id is not None:
        for _ in range(STALE_RETRIES):
            view = await cache.view(db, now=req.now)
            if not view.covers(req.start):
                break
            booking = await _place_fast(writer, view, req, req.staff_id)
            if booking is not None:
                return booking
            cache.invalidate()  # validated against an older catalogue: look again
        else:
            raise Conflict("the catalogue is changing right now; try again")
    return await _place_general(db, writer, req)


async def _place_fast(
    writer: BookingWriter, view: CatalogueView, req: Request, staff_id: int
) -> Booking | None:
    service = view.services.get(req.service_id)
    if service is None:
        raise NotFound("no such service", entity="service", id=req.service_id)
    if not service.active:
        raise Inactive("the service is switched off", entity="service", id=service.id)
    if staff_id not in view.staff_active:
        raise NotFound("no such staff member", entity="staff", id=staff_id)
    if not view.staff_active[staff_id]:
        raise Inactive("the staff member is switched off", entity="staff", id=staff_id)
    if service.id not in view.staff_services[staff_id]:
        raise StaffCannotServe("the staff member does not provide this service", staff_id=staff_id)
    engine.check_start(
        view.availability[staff_id],
        rules=view.rules,
        service=engine.ServiceSpec(service.id, service.duration_minutes, service.capacity),
        business_exceptions=view.business_exceptions,
        start=req.start,
        now=req.now,
        enforce_customer_rules=req.actor.is_customer,
    )
    return await _write(writer, req, view.settings, service, staff_id, version=view.version)


async def _place_general(db: Database, writer: BookingWriter, req: Request) -> Booking:
    utc_day = req.start.astimezone(UTC).date()  # +-1 day covers the local date in any zone
    async with db.connection() as conn:
        ctx = await load_context(
            conn,
            service_id=req.service_id,
            staff_id=req.staff_id,
            day_from=utc_day - timedelta(days=1),
            day_to=utc_day + timedelta(days=1),
            slot_start=req.start,
        )
        if not ctx.service.active:
            raise Inactive("the service is switched off", entity="service", id=req.service_id)
        await explain_no_staff(conn, ctx, req.staff_id)
    day = req.start.astimezone(ctx.rules.zone).date()
    # stable sort: ties keep display order, so "anyone" is fair and predictable
    members = sorted(ctx.staff, key=lambda m: ctx.load.get((m.staff_id, day), 0))
    failures: list[SlotUnavailable] = []
    for member in members:
        try:
            engine.check_start(
                member,
                rules=ctx.rules,
                service=ctx.spec,
                business_exceptions=ctx.business_exceptions,
                start=req.start,
                now=req.now,
                enforce_customer_rules=req.actor.is_customer,
            )
            booking = await _write(writer, req, ctx.settings, ctx.service, member.staff_id, None)
            assert booking is not None  # no version given, so never stale
            return booking
        except SlotUnavailable as exc:
            failures.append(exc)
    taken = [f for f in failures if isinstance(f, SlotTaken)]
    raise (taken or failures)[0]


async def explain_no_staff(conn: asyncpg.Connection, ctx: Context, staff_id: int | None) -> None:
    """Raise why no staff member is a candidate (missing, switched off, other services)."""
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


def occupied_range(
    settings: BusinessSettings, start: datetime, duration_minutes: int
) -> tuple[datetime, datetime]:
    """What a booking blocks: the appointment plus the buffers around it."""
    end = start + timedelta(minutes=duration_minutes)
    return (
        start - timedelta(minutes=settings.buffer_before_minutes),
        end + timedelta(minutes=settings.buffer_after_minutes),
    )


async def _write(
    writer: BookingWriter,
    req: Request,
    settings: BusinessSettings,
    service: Service,
    staff_id: int,
    version: int | None,
) -> Booking | None:
    """One write of the request for ``staff_id``; None when the catalogue ``version`` is stale."""
    by_customer = req.actor.is_customer
    limited = by_customer or req.enforce_limit
    pending = by_customer and settings.confirmation_required
    occupied_from, occupied_until = occupied_range(settings, req.start, service.duration_minutes)
    rule = req.deposit_rule or service.deposit_rule
    if req.deposit_required and rule.kind is DepositKind.NONE:
        rule = DepositRule.full()
    deposit = rule.amount(service.price) if by_customer else Decimal(0)
    outcome, booking = await writer.write(
        SlotRequest(
            customer_id=req.customer_id,
            service_id=service.id,
            staff_id=staff_id,
            starts_at=req.start,
            ends_at=req.start + timedelta(minutes=service.duration_minutes),
            occupied_from=occupied_from,
            occupied_until=occupied_until,
            status=(BookingStatus.PENDING if pending else BookingStatus.CONFIRMED).value,
            comment=req.comment,
            active_limit=settings.max_active_per_customer if limited else None,
            actor=req.actor.kind.value,
            actor_id=req.actor.telegram_user_id,
            reminder_offsets=list(settings.reminder_offsets_minutes) if req.remind else [],
            idempotency_key=req.idempotency_key,
            local_day=req.start.astimezone(settings.zone).date(),
            catalogue_version=version,
            capacity=service.capacity,
        ),
        deposit=deposit,
    )
    if outcome == "ok":
        assert booking is not None
        log.info(
            "booking created",
            extra={"booking_id": booking.id, "staff_id": staff_id, "seat": booking.seat},
        )
        return booking
    if outcome == "stale":
        return None
    if outcome == "taken":
        raise SlotTaken("the slot overlaps an active booking", staff_id=staff_id)
    if outcome == "duplicate":  # the caller finds the booking its key names
        raise Conflict(
            "the idempotency key names a booking already",
            constraint="bookings_idempotency_key_idx",
        )
    if outcome == "limit":
        raise LimitReached(
            "the customer has the maximum of active bookings",
            limit=settings.max_active_per_customer,
        )
    if outcome == "blocked":
        raise CustomerBlocked("the owner blocked this customer from booking")
    if outcome == "full":
        raise SlotTaken("every seat is taken", capacity=service.capacity)
    if outcome == "no_customer":
        raise NotFound("no such customer", entity="customer", id=req.customer_id)
    if outcome == "no_service":
        raise NotFound("no such service", entity="service", id=service.id)
    raise StorageError(f"book_slots answered an unknown outcome: {outcome!r}")
