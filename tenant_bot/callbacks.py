"""Callback data of every inline button, as aiogram ``CallbackData`` factories with short prefixes.

Telegram allows 64 bytes of callback data, so prefixes are one or two letters and dates travel as
``YYYYMMDD`` integers, times as epoch seconds. A button whose data no longer parses (an old bot
version, a forged payload) matches no factory and lands in the "this button is outdated" handler.
"""

from __future__ import annotations

from datetime import date

from aiogram.filters.callback_data import CallbackData


def day_code(day: date) -> int:
    """``date(2025, 3, 7)`` -> ``20250307``."""
    return day.year * 10000 + day.month * 100 + day.day


def day_of(code: int) -> date:
    """The inverse of :func:`day_code`; raises ``ValueError`` on a malformed code."""
    return date(code // 10000, code // 100 % 100, code % 100)


class Menu(CallbackData, prefix="m"):
    """Main menu entries: book, my, lang, help, home, admin."""

    action: str


class PickService(CallbackData, prefix="s"):
    service_id: int


class PickStaff(CallbackData, prefix="f"):
    """``staff_id`` 0 means "anyone"."""

    staff_id: int


class Month(CallbackData, prefix="cm"):
    """Calendar page: the month ``offset`` months after the current one (``purpose`` as in Day)."""

    offset: int
    purpose: str = "b"


class PickDay(CallbackData, prefix="d"):
    """A day in a calendar; ``purpose``: ``b`` booking, ``r`` reschedule, ``a`` admin schedule,
    ``k`` admin block-day, ``m`` the owner moving a booking, ``s`` a staff member's day."""

    day: int
    purpose: str = "b"


class ClosedDay(CallbackData, prefix="dx"):
    """A closed day in a customer's calendar (a day off, blocked, or no time left): tapping it
    only says so."""

    day: int


class PickTime(CallbackData, prefix="t"):
    """A slot: start as epoch seconds and the staff member it belongs to."""

    ts: int
    staff_id: int


class Draft(CallbackData, prefix="c"):
    """Summary actions of the draft ``draft`` (its id): ``ok`` confirm, ``x`` abandon."""

    action: str
    draft: str


class Back(CallbackData, prefix="k"):
    """Step back in the booking flow to ``step``: service, staff, day, time."""

    step: str


class MoveConfirm(CallbackData, prefix="rc"):
    """The customer confirms moving their booking to the tapped time (``ts``, ``staff_id`` as in
    :class:`PickTime`)."""

    ts: int
    staff_id: int


class Waitlist(CallbackData, prefix="w"):
    day: int


class MyBooking(CallbackData, prefix="b"):
    """A customer's booking: ``v`` view, ``c`` ask to cancel, ``cy`` cancel, ``r`` reschedule."""

    booking_id: int
    action: str = "v"


class Language(CallbackData, prefix="l"):
    code: str


class Admin(CallbackData, prefix="a"):
    """Owner menu sections: menu, today, tomorrow, pick, blocks, services, staff, settings,
    export, profile."""

    section: str


class OwnerBooking(CallbackData, prefix="ab"):
    """The owner's actions on a booking: ``v`` view, ``ok`` confirm, ``x`` cancel (asks a reason),
    ``d`` done, ``n`` no-show, ``m`` move to another time."""

    booking_id: int
    action: str = "v"


class Block(CallbackData, prefix="al"):
    """Blocks: ``day`` pick a day, ``period`` type a period, ``rm`` remove ``block_id``."""

    action: str
    block_id: int = 0


class ServiceEdit(CallbackData, prefix="as"):
    """``service_id`` 0 with ``new``; otherwise ``v`` view, ``e`` edit, ``t`` toggle active."""

    service_id: int
    action: str = "v"


class StaffEdit(CallbackData, prefix="af"):
    """``new``, ``v`` view, ``t`` toggle active, ``h`` hours, ``s`` services, ``sv`` toggle
    ``service_id`` for this staff member, ``inv`` an invitation to the /staff desk, ``un`` unlink their Telegram account."""

    staff_id: int
    action: str = "v"
    service_id: int = 0


class Hours(CallbackData, prefix="ah"):
    """Edit one weekday (0 = Monday) of a staff member's hours."""

    staff_id: int
    weekday: int


class HoursCopy(CallbackData, prefix="ay"):
    """Copy one weekday's hours of a staff member: ``to`` is ``w`` (Monday to Friday), ``a``
    (every day), ``p`` (the pick screen, ``days`` the ticked weekdays as bits, Monday = 1) or
    ``g`` (copy to the ``days`` ticked)."""

    staff_id: int
    weekday: int
    to: str
    days: int = 0


class Setting(CallbackData, prefix="ae"):
    """A booking rule to change (``confirm`` toggles at once, the others ask for a value)."""

    name: str


class Export(CallbackData, prefix="ax"):
    """Export range: ``week``, ``month``, ``last30``, ``custom``."""

    period: str


class Profile(CallbackData, prefix="ap"):
    """A business profile field to edit."""

    field: str


class Attend(CallbackData, prefix="ra"):
    """ "I'll come" under a reminder (its "Cancel" / "Reschedule" are :class:`MyBooking` buttons)."""

    booking_id: int


# ----- deposits (issue 19) -----


class Refund(CallbackData, prefix="rf"):
    """The owner made the refund due on ``booking_id``."""

    booking_id: int


class PaySetting(CallbackData, prefix="py"):
    """The owner's payment set-up: ``token``, ``hold``, ``free``, ``keep``, ``vat`` ask for a value;
    ``receipts`` toggles; ``off`` forgets the provider token; ``svc`` lists services, ``dep`` asks
    ``service_id``'s deposit rule."""

    name: str
    service_id: int = 0


class DateHours(CallbackData, prefix="ad"):
    """A staff member's hours on one date (``day`` as in :class:`PickDay`): ``x`` closed that
    day, ``r`` back to the weekly hours."""

    staff_id: int
    day: int
    action: str


class Vacation(CallbackData, prefix="av"):
    """Closures over several days: ``new`` who is away, ``w`` for ``staff_id`` (0: everyone),
    ``v`` view ``block_id`` with the bookings inside, ``x`` cancel ``booking_id`` inside it (the
    customer is told the closure's reason)."""

    action: str
    staff_id: int = 0
    block_id: int = 0
    booking_id: int = 0


class Client(CallbackData, prefix="ac"):
    """The client book: ``v`` view customer ``id``, ``n`` / ``p`` / ``o`` edit name / phone /
    notes, ``b`` block or unblock booking, ``s`` search again."""

    action: str
    id: int = 0


class OwnerNew(CallbackData, prefix="an"):
    """The owner books for someone: ``c`` the client book's customer ``id`` (0: the new one
    typed), ``ok`` book, ``okn`` book and tell the customer, ``ov`` book over the customer's limit,
    ``w`` a walk-in now for service ``id``."""

    action: str
    id: int = 0


class Holidays(CallbackData, prefix="ao"):
    """Public holidays: ``v`` the screen, ``on`` switch on ``country``'s calendar, ``c`` type a
    country, ``off`` switch off, ``t`` open or close the holiday ``day`` again."""

    action: str
    country: str = ""
    day: int = 0


# -- reviews and mailings (issue 20) --


class Rate(CallbackData, prefix="rv"):
    """A customer's stars (1-5) for the visit ``booking_id``; ``stars`` 0 skips the comment."""

    booking_id: int
    stars: int


class ReviewAdmin(CallbackData, prefix="ar"):
    """The owner on a review: ``h`` hide, ``s`` show again; ``booking_id`` 0 with ``t`` toggles
    review requests, ``n`` asks for the threshold."""

    booking_id: int
    action: str


class Mailing(CallbackData, prefix="u"):
    """A customer's tap under a mailing: ``off`` no more mailings, ``on`` mailings again."""

    action: str


class MailingAdmin(CallbackData, prefix="am"):
    """The owner's mailing steps: ``new``; ``aud`` with ``value`` the audience (all, recent,
    lapsed, service); ``days`` with ``value`` a number of days; ``svc`` with ``value`` a service
    id; ``send``; ``stop`` with ``value`` a mailing id."""

    action: str
    value: str = ""


# -- booking link, calendar files and statistics (issue 20) --


class CalendarFile(CallbackData, prefix="ai"):
    """The owner's schedule as an ``.ics`` file: ``today``, ``tomorrow``, ``week``, ``next``."""

    period: str


class BookingLink(CallbackData, prefix="ak"):
    """The owner's booking link: ``kind`` ``b`` the business, ``s`` a service, ``f`` a staff
    member (``item_id``); ``qr`` true sends the QR code image."""

    kind: str
    item_id: int = 0
    qr: bool = False


class StatsRange(CallbackData, prefix="at"):
    """The owner's statistics: ``week``, ``month``, ``last30``, ``custom`` (typed dates)."""

    period: str


class Desk(CallbackData, prefix="sd"):
    """A staff member's /staff menu: ``menu`` shows it (its "New booking" and "Walk-in now" reuse
    the owner's ``Admin`` sections ``nb`` and ``wi`` on the staff member's own schedule); ``day``
    their bookings of ``day`` (as in :class:`PickDay`; 0: today), ``pick`` a date to see (the
    calendar answers with ``PickDay`` / ``Month`` of purpose ``s``)."""

    action: str
    day: int = 0


class DeskBooking(CallbackData, prefix="sb"):
    """A staff member on one of their own bookings: ``v`` view, ``d`` came, ``n`` did not come,
    ``x`` cancel (asks a reason). Another member's booking is refused as a stale button."""

    booking_id: int
    action: str = "v"
