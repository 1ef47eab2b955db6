"""The booking core's values: immutable dataclasses the services return and the bot renders.

Times are aware ``datetime`` objects in UTC (``timestamptz``); local wall times exist only where the
tenant's time zone is applied (working hours as minutes of the local day, dates of exceptions).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from tenant_bot.booking.errors import InvalidHours, InvalidInput

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime; injected so tests and the bot control time."""


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class BookingStatus(StrEnum):
    """Where a booking is in its life: pending -> confirmed -> done | no_show; cancelled from both."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Active bookings hold their time and count towards the customer's limit."""
        return self in (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class PaymentState(StrEnum):
    """A booking's deposit: none asked, awaiting payment (the seat held), paid, or released unpaid."""

    NONE = "none"
    AWAITING = "awaiting"
    PAID = "paid"
    RELEASED = "released"


class DepositKind(StrEnum):
    """What a service asks before it is booked."""

    NONE = "none"
    FIXED = "fixed"  # a fixed amount (capped at the price)
    PERCENT = "percent"  # a percentage of the price
    FULL = "full"  # full prepayment


@dataclass(frozen=True, slots=True)
class DepositRule:
    """A service's deposit rule (or an override of it for one booking: see ``BookingService.book``)."""

    kind: DepositKind = DepositKind.NONE
    value: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.value < 0:
            raise InvalidInput("deposit_value", "must not be negative")
        if self.kind is DepositKind.PERCENT and not 0 < self.value <= 100:
            raise InvalidInput("deposit_value", "a percentage must be between 1 and 100")
        if self.kind is DepositKind.FIXED and self.value <= 0:
            raise InvalidInput("deposit_value", "a fixed deposit must be more than 0")

    @classmethod
    def full(cls) -> DepositRule:
        return cls(DepositKind.FULL)

    def amount(self, price: Decimal) -> Decimal:
        """The deposit for a booking at ``price`` (never more than the price; 0: none)."""
        if self.kind is DepositKind.FIXED:
            return min(self.value, price).quantize(Decimal("0.01"))
        if self.kind is DepositKind.PERCENT:
            return (price * self.value / 100).quantize(Decimal("0.01"))
        if self.kind is DepositKind.FULL:
            return price.quantize(Decimal("0.01"))
        return Decimal(0)


ALLOWED_TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.PENDING: frozenset({BookingStatus.CONFIRMED, BookingStatus.CANCELLED}),
    BookingStatus.CONFIRMED: frozenset(
        {BookingStatus.DONE, BookingStatus.NO_SHOW, BookingStatus.CANCELLED}
    ),
    BookingStatus.DONE: frozenset(),
    BookingStatus.NO_SHOW: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}


class ActorKind(StrEnum):
    """Who changed a booking."""

    CUSTOMER = "customer"
    OWNER = "owner"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: customers obey every rule, the owner skips notice/horizon/limit/grid rules."""

    kind: ActorKind
    telegram_user_id: int | None = None

    @classmethod
    def customer(cls, telegram_user_id: int) -> Actor:
        return cls(ActorKind.CUSTOMER, telegram_user_id)

    @classmethod
    def owner(cls, telegram_user_id: int | None = None) -> Actor:
        return cls(ActorKind.OWNER, telegram_user_id)

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorKind.SYSTEM)

    @property
    def is_customer(self) -> bool:
        return self.kind is ActorKind.CUSTOMER


# A time is ``H``, ``H:MM`` or ``H.MM``; start and end are joined by a hyphen, a dash (en, em...)
# or a minus sign, with or without spaces around it.
_TIME = r"(\d{1,2})(?:[:.](\d{2}))?"
_RANGE = re.compile(rf"^\s*{_TIME}\s*[-\u2010-\u2015\u2212]\s*{_TIME}\s*$")


@dataclass(frozen=True, slots=True, order=True)
class WorkInterval:
    """Local wall-time interval ``[start_minute, end_minute)`` of a day; 1440 is midnight at the end."""

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not (0 <= self.start_minute < self.end_minute <= 1440):
            raise InvalidInput(
                "interval", "must be within 00:00-24:00 and start before it ends, e.g. 09:00-13:00"
            )

    @classmethod
    def parse(cls, text: str) -> WorkInterval:
        """Parse one interval as people type it: ``09:00-18:00``, ``9-18``, ``9:00–18:00`` (a
        dash), ``09.00 - 18.00``; ``24`` is allowed as an end. Raises :class:`InvalidHours` saying
        whether the form, a time or the order is wrong."""
        match = _RANGE.match(text)
        if not match:
            raise InvalidHours("format", text.strip())
        h1, m1, h2, m2 = (int(g) if g is not None else 0 for g in match.groups())
        if m1 > 59 or m2 > 59 or h1 > 23 or h2 > 24 or (h2 == 24 and m2):
            raise InvalidHours("time", text.strip())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise InvalidHours("order", text.strip())
        return cls(start, end)

    @classmethod
    def of(cls, start: time, end: time) -> WorkInterval:
        """From two ``time`` values; an ``end`` of 00:00 means midnight at the end of the day."""
        end_minute = end.hour * 60 + end.minute or 1440
        return cls(start.hour * 60 + start.minute, end_minute)

    def __str__(self) -> str:
        return f"{_hhmm(self.start_minute)}-{_hhmm(self.end_minute)}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class BusinessSettings:
    """The tenant's business profile and booking rules (one row)."""

    business_name: str
    description: str
    address: str
    phone: str
    map_url: str
    welcome_text: str
    time_zone: str
    default_locale: str
    currency: str
    slot_step_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    horizon_days: int
    max_active_per_customer: int
    cancel_notice_minutes: int
    reschedule_notice_minutes: int
    confirmation_required: bool
    reminder_offsets_minutes: tuple[int, ...]
    updated_at: datetime
    # reminders that ask and no-show memory (migration 0030): see .attendance and .no_shows
    release_unconfirmed_hours: int | None = None
    no_show_action: str = "off"
    no_show_threshold: int = 2
    # the public holiday calendar (ISO country, None: off) and the holidays the owner opened anyway
    holiday_country: str | None = None
    holidays_opened: tuple[date, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True)
class Service:
    """Something customers book; ``capacity`` seats per session (1 = an individual appointment)."""

    id: int
    name: str
    description: str
    duration_minutes: int
    price: Decimal
    currency: str
    capacity: int
    active: bool
    sort_order: int
    deposit_rule: DepositRule = field(default_factory=DepositRule)


@dataclass(frozen=True, slots=True)
class Staff:
    """A person or resource bookings occupy; ``service_ids`` are the services they provide."""

    id: int
    name: str
    description: str
    telegram_user_id: int | None
    active: bool
    sort_order: int
    service_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DateException:
    """Hours replacing the weekly ones on ``day``; no intervals means a day off."""

    staff_id: int | None
    day: date
    intervals: tuple[WorkInterval, ...]
    note: str = ""

    @property
    def day_off(self) -> bool:
        return not self.intervals


@dataclass(frozen=True, slots=True)
class BlockedPeriod:
    """A period the owner closed; ``staff_id`` None closes the whole business."""

    id: int
    staff_id: int | None
    starts_at: datetime
    ends_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Customer:
    """Someone who books; ``phone`` is E.164 or None. ``telegram_user_id`` is None for a customer
    the owner booked by phone or at the door (the bot cannot write to them)."""

    id: int
    telegram_user_id: int | None
    name: str
    phone: str | None
    locale: str | None


@dataclass(frozen=True, slots=True)
class Booking:
    """One booking (for capacity > 1 services: one seat of a session)."""

    id: int
    customer_id: int
    service_id: int
    staff_id: int
    starts_at: datetime
    ends_at: datetime
    seat: int
    status: BookingStatus
    price: Decimal
    currency: str
    comment: str
    cancel_reason: str | None
    cancelled_by: str | None
    created_at: datetime
    updated_at: datetime
    customer_confirmed_at: datetime | None = None  # "I'll come" tapped under a reminder
    # money (issue 19): what is asked, where its payment stands, what the owner owes back
    deposit: Decimal = Decimal(0)
    payment: PaymentState = PaymentState.NONE
    hold_until: datetime | None = None
    paid_amount: Decimal | None = None
    refund_due: Decimal | None = None
    refunded_at: datetime | None = None
    provider_charge_id: str | None = None

    @property
    def awaits_payment(self) -> bool:
        """Active and holding its seat until the deposit is paid (or ``hold_until`` passes)."""
        return self.payment is PaymentState.AWAITING and self.status.active

    def awaits_outcome(self, now: datetime) -> bool:
        """Whether "came" / "did not come" can be marked at ``now``: a confirmed booking whose
        start has come (before it, nobody knows yet)."""
        return BookingStatus.DONE in ALLOWED_TRANSITIONS[self.status] and self.starts_at <= now


@dataclass(frozen=True, slots=True)
class BookingDetails:
    """A booking with the names the bot shows and reports export."""

    booking: Booking
    service_name: str
    staff_name: str
    customer_name: str
    customer_phone: str | None
    customer_telegram_id: int | None
    customer_locale: str | None


@dataclass(frozen=True, slots=True)
class DaySchedule:
    """One local day's bookings for the owner, by start: ``booked`` holds every booking that
    counts (awaiting confirmation, confirmed, done, no-show), ``cancelled`` the cancelled ones."""

    day: date
    booked: tuple[BookingDetails, ...]
    cancelled: tuple[BookingDetails, ...]

    @classmethod
    def of(cls, day: date, bookings: list[BookingDetails]) -> DaySchedule:
        return cls(
            day,
            tuple(d for d in bookings if d.booking.status is not BookingStatus.CANCELLED),
            tuple(d for d in bookings if d.booking.status is BookingStatus.CANCELLED),
        )


@dataclass(frozen=True, slots=True)
class CalendarDays:
    """What a customer's calendar shows for a service: ``free`` days have a bookable time,
    ``full`` days are open but booked up (a waitlist makes sense there); every other day is
    closed (a day off, blocked, or no time left to book), not fully booked."""

    free: frozenset[date]
    full: frozenset[date]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One recorded change of a booking."""

    at: datetime
    actor: ActorKind
    actor_id: int | None
    from_status: BookingStatus | None
    to_status: BookingStatus
    from_starts_at: datetime | None
    to_starts_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable start: ``staff_id`` is who gets it (chosen fairly when asked for "anyone")."""

    start: datetime
    end: datetime
    staff_id: int
    seats_left: int = 1


@dataclass(frozen=True, slots=True)
class ClaimedReminder:
    """A reminder claimed for sending; ``claim_token`` proves the claim to :meth:`mark_sent`."""

    id: int
    offset_minutes: int
    due_at: datetime
    claim_token: str
    details: BookingDetails
    attempts: int = 1  # this claim's attempt number (a passing failure releases it for a retry)


@dataclass(frozen=True, slots=True)
class CompletionPrompt:
    """An ended booking claimed for its "did they come?" card; ``attempts`` counts from 1."""

    details: BookingDetails
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class WaitlistEntry:
    """A customer's wish for a service on a local day (``staff_id`` None: anyone)."""

    id: int
    customer_id: int
    service_id: int
    staff_id: int | None
    day: date
    status: str
    created_at: datetime
    customer_telegram_id: int = 0
    customer_locale: str | None = None


class NoShowAction(StrEnum):
    """What the owner does about customers with repeated no-shows."""

    OFF = "off"
    DEPOSIT = "deposit"  # a deposit is required from them, whatever the service
    BLOCK = "block"  # they cannot book (the owner still can, for them)


@dataclass(frozen=True, slots=True)
class NoShowStanding:
    """A customer's no-shows at this business and what the owner's rule makes of them."""

    no_shows: int
    action: NoShowAction
    threshold: int

    @property
    def reached(self) -> bool:
        """The rule is on and the customer has at least ``threshold`` no-shows."""
        return self.action is not NoShowAction.OFF and self.no_shows >= self.threshold

    @property
    def blocked(self) -> bool:
        return self.reached and self.action is NoShowAction.BLOCK

    @property
    def deposit_required(self) -> bool:
        return self.reached and self.action is NoShowAction.DEPOSIT


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """Counts of bookings in a range by status, service and staff."""

    total: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_service: dict[str, int] = field(default_factory=dict)
    by_staff: dict[str, int] = field(default_factory=dict)
    revenue: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    """How the business takes deposits (issue 19). ``provider_token`` is the stored ciphertext (the
    bot decrypts it); deposits are asked only while one is set."""

    provider_token: str | None = field(default=None, repr=False)
    hold_minutes: int = 15
    receipts: bool = False
    receipt_vat_code: int = 1
    free_cancel_hours: int = 24
    late_keep_percent: int = 100

    @property
    def enabled(self) -> bool:
        return self.provider_token is not None


@dataclass(frozen=True, slots=True)
class CancelTerms:
    """What cancelling a booking now means for its deposit: ``refund`` goes back, ``kept`` stays."""

    paid: Decimal
    refund: Decimal
    kept: Decimal
    free: bool  # before the free-cancellation deadline

    @property
    def applies(self) -> bool:
        return self.paid > 0


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What a ``successful_payment`` did: ``confirmed`` it, was a ``repeat`` of one applied, or came
    ``late`` (the hold had ended: the whole amount is due back)."""

    outcome: str
    booking: Booking
