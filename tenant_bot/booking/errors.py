"""The booking core's one error tree.

Every error the core raises derives from :class:`BookingError` and carries a stable machine-readable
``code`` (the bot maps it to a localized text, e.g. ``templates/<locale>/errors/<code>``) plus ``details``
with the values a message may show. asyncpg errors never leave the core: they are wrapped at the
storage boundary (:mod:`tenant_bot.booking.db`) with ``raise ... from exc``.

- :class:`NotFound` — ``not_found``: a service, staff member, booking, customer... does not exist.
- :class:`InvalidInput` — ``invalid_input``: a value is malformed (``field`` names it).
  - :class:`InvalidPhone` — ``invalid_phone``.
  - :class:`InvalidTimeZone` — ``invalid_time_zone``.
  - :class:`InvalidHours` — ``invalid_hours``: typed working hours that cannot be read or make no
    sense (``problem``: ``format``, ``time``, ``order`` or ``overlap``; ``text``: the part at fault).
- :class:`SlotUnavailable` — the requested time cannot be booked:
  - :class:`SlotTaken` — ``slot_taken``: someone else holds it (or every seat is sold).
  - :class:`OutsideWorkingHours` — ``outside_working_hours``: not within hours / a day off / not on the
    slot grid.
  - :class:`SlotBlocked` — ``slot_blocked``: the owner blocked that period.
  - :class:`TooLate` — ``too_late``: less than the minimum notice is left (booking, cancel, reschedule).
  - :class:`BeyondHorizon` — ``beyond_horizon``: further ahead than the booking horizon.
  - :class:`StaffCannotServe` — ``staff_cannot_serve``: the staff member does not do that service.
  - :class:`Inactive` — ``inactive``: the service or staff member is switched off.
- :class:`LimitReached` — ``limit_reached``: the customer already has the maximum of active bookings.
- :class:`CustomerBlocked` — ``customer_blocked``: the owner blocks bookings from customers with this
  many no-shows (``no_shows``).
- :class:`InvalidTransition` — ``invalid_transition``: e.g. confirming a cancelled booking.
- :class:`Forbidden` — ``forbidden``: a customer acting on someone else's booking.
- :class:`Conflict` — ``conflict``: the change clashes with existing data (e.g. overlapping hours).
- :class:`StorageUnavailable` — ``storage_unavailable``: PostgreSQL cannot be reached; retry later.
  - :class:`StorageBusy` — ``storage_busy``: a deadlock or serialization failure between concurrent
    requests; the core retries these itself and raises only if they persist.
- :class:`StorageError` — ``storage_error``: an unexpected database error (a bug; logged with details).
"""

from __future__ import annotations

from typing import Any


class BookingError(Exception):
    """Base of every deliberate booking-core error; ``code`` is stable, ``details`` feed messages."""

    code = "booking_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class NotFound(BookingError):
    """The thing asked for does not exist (``details['entity']`` names what)."""

    code = "not_found"


class InvalidInput(BookingError):
    """A value is malformed; ``field`` names it and the message says what a valid one looks like."""

    code = "invalid_input"

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **details)
        self.field = field


class InvalidPhone(InvalidInput):
    """A phone number that cannot be normalised to E.164."""

    code = "invalid_phone"


class InvalidTimeZone(InvalidInput):
    """A time zone name the IANA database does not know."""

    code = "invalid_time_zone"


class InvalidHours(InvalidInput):
    """Working hours that cannot be used: ``problem`` says why (``format``: not like 9:00-18:00,
    ``time``: a time that does not exist, ``order``: the end is not after the start, ``overlap``:
    two intervals overlap) and ``text`` shows the part at fault, as typed."""

    code = "invalid_hours"

    def __init__(self, problem: str, text: str) -> None:
        super().__init__("hours", f"{problem}: {text!r}", problem=problem, text=text)
        self.problem = problem


class SlotUnavailable(BookingError):
    """The requested time cannot be booked."""

    code = "slot_unavailable"


class SlotTaken(SlotUnavailable):
    """Another booking holds the time (for seats: every seat is sold)."""

    code = "slot_taken"


class OutsideWorkingHours(SlotUnavailable):
    """Not within working hours, on a day off, or not on the slot grid."""

    code = "outside_working_hours"


class SlotBlocked(SlotUnavailable):
    """The owner blocked the period."""

    code = "slot_blocked"


class TooLate(SlotUnavailable):
    """Less than the minimum notice is left before the start."""

    code = "too_late"


class BeyondHorizon(SlotUnavailable):
    """The start is beyond the booking horizon."""

    code = "beyond_horizon"


class StaffCannotServe(SlotUnavailable):
    """The staff member does not provide the service."""

    code = "staff_cannot_serve"


class Inactive(SlotUnavailable):
    """The service or staff member is switched off."""

    code = "inactive"


class LimitReached(BookingError):
    """The customer already holds the maximum number of active bookings."""

    code = "limit_reached"


class CustomerBlocked(BookingError):
    """The customer may not book: the owner's no-show rule (``no_shows`` is their count), or the
    owner blocked them in the client book."""

    code = "customer_blocked"


class InvalidTransition(BookingError):
    """The booking's status does not allow the change."""

    code = "invalid_transition"


class Forbidden(BookingError):
    """The actor may not act on this booking."""

    code = "forbidden"


class Conflict(BookingError):
    """The change clashes with existing data."""

    code = "conflict"


class StorageUnavailable(BookingError):
    """PostgreSQL cannot be reached or the pool is exhausted; the caller may retry later."""

    code = "storage_unavailable"


class StorageBusy(StorageUnavailable):
    """Concurrent transactions collided (deadlock, serialization failure); retrying resolves it."""

    code = "storage_busy"


class StorageError(BookingError):
    """An unexpected database error; indicates a bug, never user input."""

    code = "storage_error"
