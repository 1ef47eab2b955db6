"""DepositService: deposits and prepayment, the hold that keeps a seat until paid, the cancellation
policy (issue 19).

A customer's booking of a service with a deposit rule (or one the caller imposes, ``book(...,
deposit_rule=...)``) is written by ``book_slots`` as pending and awaiting payment, its seat held until
``hold_until`` (no one else can book it). Then:

- ``check_payable`` answers Telegram's ``pre_checkout_query``: one row-locked read, so it is fast under
  load. A payable booking gets its hold stretched by :data:`CHARGE_GRACE`, so the hold cannot expire
  between the approval and the ``successful_payment`` that follows it.
- ``record_payment`` applies ``successful_payment`` once per Telegram charge id (a unique index; the
  booking's row lock): the booking is confirmed (or stays pending for the owner when confirmation is
  required); a repeat returns ``repeat``; a payment that arrives after the hold ended is recorded with
  the whole amount as refund due (``late``).
- ``expire_holds`` (the background loop) cancels holds that ran out, each once (``SKIP LOCKED``), and
  marks them ``release_pending``; ``pending_releases``/``release_done`` let the bot tell the waitlist
  and clear the mark after, so a restart in between tells it then (the courier's own once-keys keep a
  repeat from reaching anyone twice).
- Cancellation (:func:`settle`, called by the state machine in the cancelling transaction): an unpaid
  hold is released; a paid deposit is refunded in full when the owner cancels or the customer cancels
  before ``free_cancel_hours``, else the business keeps ``late_keep_percent``; a no-show keeps it all.
  Telegram cannot refund a provider payment, so the refund is recorded (``refund_due``) for the owner
  to make in the provider's dashboard and ``mark_refunded`` when done.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from tenant_bot.booking.catalogue import CatalogueService
from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput, NotFound
from tenant_bot.booking.models import (
    ActorKind,
    Booking,
    BookingStatus,
    CancelTerms,
    Clock,
    DepositRule,
    PaymentOutcome,
    PaymentSettings,
    PaymentState,
    Service,
    utc_now,
)
from tenant_bot.booking.repositories import bookings as bookings_repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import payments as repo

log = logging.getLogger(__name__)

# An approved pre-checkout keeps the seat at least this long, for the charge to arrive.
CHARGE_GRACE = timedelta(minutes=5)
CENT = Decimal("0.01")


def to_minor(amount: Decimal) -> int:
    """Telegram's amounts are integers in the currency's smallest unit (kopecks, cents)."""
    return int((amount * 100).to_integral_value())


def from_minor(amount: int) -> Decimal:
    return (Decimal(amount) / 100).quantize(CENT)


def cancel_terms(
    booking: Booking, settings: PaymentSettings, *, now: datetime, by: ActorKind
) -> CancelTerms:
    """What cancelling ``booking`` at ``now`` by ``by`` returns and keeps of a paid deposit."""
    paid = booking.paid_amount if booking.payment is PaymentState.PAID else None
    if not paid:
        return CancelTerms(paid=Decimal(0), refund=Decimal(0), kept=Decimal(0), free=True)
    free = booking.starts_at - now >= timedelta(hours=settings.free_cancel_hours)
    if by is not ActorKind.CUSTOMER or free:
        return CancelTerms(paid=paid, refund=paid, kept=Decimal(0), free=True)
    kept = (paid * settings.late_keep_percent / 100).quantize(CENT)
    return CancelTerms(paid=paid, refund=paid - kept, kept=kept, free=False)


async def settle(
    conn: asyncpg.Connection, booking: Booking, *, by: ActorKind, now: datetime
) -> Booking:
    """Apply the deposit policy to ``booking`` just moved to a final status (same transaction)."""
    if booking.payment is PaymentState.AWAITING and not booking.status.active:
        return await repo.settle(
            conn, booking.id, release=True, refund_due=None, refund_reason=None
        )
    if booking.payment is not PaymentState.PAID or booking.status is not BookingStatus.CANCELLED:
        return booking  # done or no-show: the deposit is kept
    settings = await repo.get_settings(conn)
    terms = cancel_terms(booking, settings, now=now, by=by)
    reason = "cancelled in time" if terms.free else "cancelled late"
    if by is not ActorKind.CUSTOMER:
        reason = f"cancelled by the {by.value}"
    return await repo.settle(
        conn, booking.id, release=False, refund_due=terms.refund, refund_reason=reason
    )


class DepositService:
    """Deposits: set-up, quotes, pre-checkout checks, payments, holds and refunds."""

    def __init__(
        self, db: Database, *, catalogue: CatalogueService, clock: Clock = utc_now
    ) -> None:
        self._db = db
        self._catalogue = catalogue
        self._clock = clock

    async def settings(self) -> PaymentSettings:
        async with self._db.connection() as conn:
            return await repo.get_settings(conn)

    async def update_settings(self, **changes: object) -> PaymentSettings:
        """Change the set-up: ``provider_token`` (a ciphertext, or None to stop taking deposits),
        ``hold_minutes`` (2-1440), ``receipts``, ``receipt_vat_code`` (1-12),
        ``free_cancel_hours`` (0-720), ``late_keep_percent`` (0-100)."""
        bounds = {
            "hold_minutes": (2, 1440),
            "receipt_vat_code": (1, 12),
            "free_cancel_hours": (0, 720),
            "late_keep_percent": (0, 100),
        }
        for name, (low, high) in bounds.items():
            value = changes.get(name)
            if value is not None and not (isinstance(value, int) and low <= value <= high):
                raise InvalidInput(name, f"must be a whole number from {low} to {high}")
        unknown = set(changes) - repo.PAYMENT_SETTINGS_COLUMNS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not a payment setting")
        async with self._db.connection() as conn:
            return await repo.update_settings(conn, changes, self._clock())

    async def set_rule(self, service_id: int, rule: DepositRule) -> Service:
        """The service's deposit rule (``DepositRule()``: none)."""
        return await self._catalogue.update_service(
            service_id, deposit_kind=rule.kind.value, deposit_value=rule.value
        )

    @staticmethod
    def quote(
        service: Service, settings: PaymentSettings, *, override: DepositRule | None = None
    ) -> Decimal:
        """The deposit booking ``service`` asks now (0: none); ``override`` replaces the service's
        rule, as ``book(deposit_rule=...)`` does."""
        if not settings.enabled:
            return Decimal(0)
        return (override or service.deposit_rule).amount(service.price)

    async def terms(self, booking: Booking, *, by: ActorKind = ActorKind.CUSTOMER) -> CancelTerms:
        """What cancelling now would return and keep (shown before the customer cancels)."""
        async with self._db.connection() as conn:
            settings = await repo.get_settings(conn)
        return cancel_terms(booking, settings, now=self._clock(), by=by)

    async def check_payable(self, booking_id: int, *, amount_minor: int, currency: str) -> str:
        """``ok``, or why the booking cannot be paid now: ``gone`` (no such booking, cancelled or
        released), ``expired`` (its hold ran out), ``paid`` (already), ``amount`` (the invoice does
        not match). ``ok`` stretches the hold by :data:`CHARGE_GRACE`."""
        now = self._clock()
        async with self._db.transaction() as conn:
            found = await bookings_repo.lock_booking(conn, booking_id)
            if found is None:
                return "gone"
            booking = found[0]
            if booking.payment is PaymentState.PAID:
                return "paid"
            if booking.payment is not PaymentState.AWAITING or not booking.status.active:
                return "gone"
            if booking.status is BookingStatus.PENDING and (
                booking.hold_until is None or booking.hold_until <= now
            ):
                return "expired"
            if to_minor(booking.deposit) != amount_minor or booking.currency != currency:
                return "amount"
            await repo.extend_hold(conn, booking.id, now + CHARGE_GRACE)
            return "ok"

    async def record_payment(
        self,
        booking_id: int,
        *,
        amount_minor: int,
        currency: str,
        telegram_charge_id: str,
        provider_charge_id: str,
    ) -> PaymentOutcome:
        """Apply a ``successful_payment`` (idempotent by ``telegram_charge_id``)."""
        if not telegram_charge_id:
            raise InvalidInput("telegram_charge_id", "is required")
        now = self._clock()
        amount = from_minor(amount_minor)
        async with self._db.transaction() as conn:
            found = await bookings_repo.lock_booking(conn, booking_id)
            if found is None:
                raise NotFound("no such booking", entity="booking", id=booking_id)
            booking = found[0]
            repeat = await repo.find_by_charge(conn, telegram_charge_id)
            if repeat is not None:
                return PaymentOutcome("repeat", repeat)
            if booking.payment is PaymentState.PAID:
                # a second charge for one booking (two invoices paid): all of it goes back
                log.warning("second payment for a booking", extra={"booking_id": booking.id})
                refund = (booking.refund_due or Decimal(0)) + amount
                paid = await repo.settle(
                    conn,
                    booking.id,
                    release=False,
                    refund_due=refund,
                    refund_reason="paid twice",
                )
                return PaymentOutcome("late", paid)
            on_time = booking.payment is PaymentState.AWAITING and booking.status.active
            settings = await catalogue_repo.get_settings(conn)
            paid = await repo.record_payment(
                conn,
                booking,
                amount=amount,
                telegram_charge_id=telegram_charge_id,
                provider_charge_id=provider_charge_id,
                now=now,
                confirm=on_time
                and booking.status is BookingStatus.PENDING
                and not settings.confirmation_required,
                refund_due=None if on_time else amount,
                refund_reason=None if on_time else "paid after the hold ended",
                notify=on_time,
            )
        log.info("deposit paid", extra={"booking_id": booking_id, "on_time": on_time})
        return PaymentOutcome("confirmed" if on_time else "late", paid)

    async def expire_holds(self, *, limit: int = 100) -> list[Booking]:
        """Cancel bookings whose hold ran out unpaid; each is returned once, to one caller."""
        async with self._db.transaction() as conn:
            expired = await repo.expire_holds(conn, self._clock(), limit=limit)
        for booking in expired:
            log.info("hold expired", extra={"booking_id": booking.id})
        return expired

    async def next_hold_end(self) -> datetime | None:
        """When the next hold awaiting payment runs out (None: no hold)."""
        async with self._db.connection() as conn:
            return await repo.next_hold_end(conn)

    async def pending_releases(self, *, limit: int = 100) -> list[Booking]:
        """Freed times (expired holds) the waitlist has not been told of yet."""
        async with self._db.connection() as conn:
            return await repo.pending_releases(conn, limit=limit)

    async def release_done(self, booking_id: int) -> None:
        async with self._db.connection() as conn:
            await repo.release_done(conn, booking_id)

    async def mark_refunded(self, booking_id: int) -> Booking:
        """The owner made the refund due; raises :class:`NotFound` when none is due."""
        async with self._db.connection() as conn:
            booking = await repo.mark_refunded(conn, booking_id, self._clock())
        if booking is None:
            raise NotFound("no refund due", entity="booking", id=booking_id)
        return booking
