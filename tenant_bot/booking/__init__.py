"""The booking core every tenant bot shares: rules, slot engine and race-free bookings.

No aiogram, no FastAPI: the tenant bot's handlers parse input, call this facade, render the result, and
map :class:`~tenant_bot.booking.errors.BookingError` ``.code`` values to localized texts.

Usage (the pool connects as the tenant's role; its default ``search_path`` finds the tables)::

    from tenant_bot.booking import WORKWEEK, Actor, BookingCore, WorkInterval, parse_day_hours

    core = BookingCore(pool)                     # clock=... to inject time (tests)

    # owner menu
    await core.catalogue.update_settings(time_zone="Europe/Moscow", slot_step_minutes=30)
    cut = await core.catalogue.create_service(name="Haircut", duration_minutes=60, price=1500)
    ivan = await core.catalogue.create_staff(name="Ivan", service_ids=[cut.id])
    await core.catalogue.set_working_hours(ivan.id, 0, [WorkInterval.parse("10:00-14:00"),
                                                        WorkInterval.parse("15:00-19:00")])
    await core.catalogue.copy_working_hours(ivan.id, 0, WORKWEEK)      # Monday's hours to Mon-Fri
    await core.catalogue.set_working_hours(ivan.id, 5, parse_day_hours("9-13, 14:00–18:00"))
    await core.catalogue.set_date_exception(date(2030, 1, 1))          # day off for everyone
    await core.catalogue.block_period(start, end, staff_id=ivan.id, reason="dentist")

    # the owner menu: a business with no staff has its owner as its one staff member
    staff = await core.catalogue.team(owner_name="Ivan", owner_telegram_id=owner_tg_id)
    cut = await core.catalogue.add_service(name="Haircut", duration_minutes=60, price=1500,
                                           owner_name="Ivan", owner_telegram_id=owner_tg_id)
    schedule = await core.bookings.day_schedule(today)   # .booked count, .cancelled apart

    # customer flow
    reads = core.catalogue.reader()              # one per update: cached, never staler than the DB
    services = await reads.services()            # also settings(), service(id), staff_for(id)
    customer = await core.customers.register(tg_user.id, name="Anna", locale="ru")
    days = await core.slots.available_days(cut.id, day_from=today, days=14)
    month = await core.slots.calendar_days(cut.id, day_from=today, days=30)  # .free, .full
    slots = await core.slots.free_slots(cut.id, day_from=day, staff_id=None)   # None = anyone
    booking = await core.bookings.book(customer_id=customer.id, service_id=cut.id,
                                       start=slots[0].start, staff_id=slots[0].staff_id,
                                       actor=Actor.customer(tg_user.id),
                                       idempotency_key=f"{update.update_id}")
    await core.bookings.reschedule(booking.id, new_start=..., actor=Actor.customer(tg_user.id))
    cancelled = await core.bookings.cancel(booking.id, actor=Actor.customer(tg_user.id))
    for wish in await core.waitlist.candidates_for(cancelled): ...     # tell them it is free

    # owner actions and background loops
    await core.bookings.confirm(booking_id, actor=Actor.owner(owner_tg_id))
    if booking.awaits_outcome(now):              # confirmed and started: came / did not come?
        await core.bookings.mark_done(booking_id, actor=Actor.owner(owner_tg_id))  # or mark_no_show
    for r in await core.reminders.claim_due(worker="bot-1"):
        ...send...; await core.reminders.mark_sent(r.id, r.claim_token)
    await core.attendance.confirm(booking_id, actor=Actor.customer(tg_user.id))  # "I'll come"
    for released in await core.attendance.release_due(): ...tell them, offer to the waitlist...
    standing = await core.no_shows.standing(customer.id)   # .no_shows, .blocked, .deposit_required
    for d in await core.completion.claim_prompts(): ...ask the owner "came?"...
    data = await core.reports.export_xlsx(day_from, day_to)

Services (attributes of :class:`BookingCore`):

- ``catalogue`` :class:`~.catalogue.CatalogueService` — settings, services, staff, hours, exceptions,
  blocked periods; ``reader()`` for the cached reads of customers' screens; ``team`` and
  ``add_service`` for the owner menu (a solo owner is its one staff member); ``copy_working_hours``.
  Typed hours: :func:`~.hours.parse_day_hours` (``9-18``, ``9:00–18:00``, ``09.00 - 18.00``).
- ``customers`` :class:`~.customers.CustomerService` — register/update by Telegram id, E.164 phones.
- ``slots`` :class:`~.availability.SlotService` — ``free_slots``, ``available_days``,
  ``calendar_days`` (free, fully booked, and by elimination closed days).
- ``bookings`` :class:`~.service.BookingService` — ``book``, ``cancel``, ``reschedule``,
  ``transition``/``confirm``/``mark_done``/``mark_no_show``, ``get``, ``for_customer``, ``for_day``,
  ``day_schedule``,
  ``upcoming``, ``history``, ``purge_idempotency_keys``.
- ``reminders`` :class:`~.reminders.ReminderService` — ``claim_due``, ``mark_sent``, ``release``
  (with a retry time), ``mark_failed``, ``expire_stale``. Changing the offsets in settings re-arms
  the bookings ahead (a reminder already sent is not sent again).
- ``attendance`` :class:`~.attendance.AttendanceService` — ``confirm`` (the customer's "I'll come",
  idempotent), ``release_due`` (unconfirmed bookings at the owner's release time).
- ``no_shows`` :class:`~.no_shows.NoShowService` — ``count``, ``standing``, ``requires_deposit``
  (for the deposit flow), ``check_may_book`` (``book`` applies it to customers).
- ``completion`` :class:`~.completion.CompletionService` — ``awaiting``, ``claim_prompts``,
  ``claim_cards``, ``retry_later``, ``mark_failed``.
- ``waitlist`` :class:`~.waitlist.WaitlistService` — ``join``, ``leave``, ``for_customer``,
  ``candidates_for``, ``mark_failed``.
- ``reports`` :class:`~.reports.ReportService` — ``bookings``, ``summary``, ``export_csv``,
  ``export_xlsx``.
- ``deposits`` :class:`~.deposits.DepositService` — ``settings``/``update_settings`` (provider token
  ciphertext, hold, receipts, cancellation policy), ``set_rule`` (per service), ``quote`` (the deposit
  a booking asks: ``quote(service, settings, override=rule)``), ``check_payable`` (pre-checkout),
  ``record_payment``, ``expire_holds``, ``pending_releases``/``release_done``, ``terms`` (what
  cancelling now returns), ``mark_refunded``. ``bookings.book(..., deposit_rule=rule)`` imposes a
  deposit on one booking (``DepositRule.full()``) or waives it (``DepositRule()``).
- ``closures`` :class:`~.closures.ClosureService` — ``close_days`` (a vacation or closure over
  whole days, for one staff member or everyone) and ``get`` (a closure with the bookings inside).
- ``clients`` :class:`~.client_book.ClientBook` — ``search`` by name or phone, ``card`` (visits,
  no-shows, cancellations, spent), ``update`` (name, phone, notes, blocked), ``find_or_add`` (a
  caller by phone, or a new customer without Telegram) and ``walk_in``.
- ``holidays`` :class:`~.holidays.HolidayService` — ``switch`` the country's public holiday
  calendar on (``"RU"``) or off (``None``), ``set_opened`` for one holiday, ``ahead``.
- ``reviews`` :class:`~.reviews.ReviewService` — a request per visit marked "came" (``prepare``,
  ``claim``, ``settle``, ``next_due``), ``rate``, ``comment``, ``hide``, ``latest``, ``ratings``
  (what customers see past the owner's threshold), ``settings`` / ``update_settings``.
- ``broadcasts`` :class:`~.broadcasts.BroadcastService` — the owner's mailings: ``audience``,
  ``count``, ``create``, ``cancel``, ``recent``; the sender's ``acquire`` (lease), ``due``,
  ``claim``, ``settle``, ``finish``, ``claim_report``; customers' ``opt_out`` / ``opt_in``.
- ``analytics`` :class:`~.analytics.AnalyticsService` — ``stats`` (the owner's statistics).
- ``calendar`` :class:`~.calendar.CalendarReads` — ``times_moved`` (the ``SEQUENCE`` of
  calendar files).

All datetimes in and out are time zone aware (UTC from the database); days (``date``) are local days
in the tenant's time zone (``settings.time_zone``). Errors: see :mod:`tenant_bot.booking.errors`; the
bot maps ``error.code`` to a text (``slot_taken``, ``too_late``, ``limit_reached``, ...).

Operational notes for the bot:

- Build ONE ``BookingCore`` per process: it keeps a catalogue cache (safe across processes: a booking
  validated against an outdated catalogue is refused by the database and re-validated, and
  ``catalogue.reader()`` checks the catalogue's version before serving a copy; nothing is ever
  invalidated by hand, see :mod:`.catalogue_cache`) and batches concurrent bookings into one
  transaction (group commit, :mod:`.batching`).
- Create the pool with ``init=init_connection``: each new connection prepares the booking statement, so
  the first booking on it is as fast as the rest.
- Pass the Telegram ``update_id`` (or the callback query id) as ``idempotency_key``: a double tap or a
  redelivered update returns the same booking.
- Background loops (one task each, any number of processes): ``notices.hand_out`` / ``notices.claim``
  (the owners' new-booking notices, armed with the booking in its transaction: durable, once each),
  ``reminders.claim_due`` every ~30 s,
  ``completion.claim_prompts`` every few minutes, ``reminders.expire_stale`` and
  ``bookings.purge_idempotency_keys`` daily.
- Tables come from ``migrations/tenant`` (applied by the platform); the bot needs no DDL rights.
"""

from __future__ import annotations

import asyncpg

from tenant_bot.booking.analytics import AnalyticsService
from tenant_bot.booking.attendance import AttendanceService
from tenant_bot.booking.availability import SlotService
from tenant_bot.booking.broadcasts import BroadcastService
from tenant_bot.booking.calendar import CalendarReads
from tenant_bot.booking.catalogue import CatalogueService
from tenant_bot.booking.catalogue_cache import CatalogueCache, CatalogueReader
from tenant_bot.booking.client_book import ClientBook, ClientCard
from tenant_bot.booking.closures import Closure, ClosureService
from tenant_bot.booking.completion import CompletionService
from tenant_bot.booking.customers import CustomerService
from tenant_bot.booking.db import Database, StorageOutages
from tenant_bot.booking.deposits import DepositService
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.holidays import Holiday, HolidayService
from tenant_bot.booking.hours import WEEK, WORKWEEK, parse_day_hours
from tenant_bot.booking.models import (
    Actor,
    ActorKind,
    BlockedPeriod,
    Booking,
    BookingDetails,
    BookingStatus,
    BusinessSettings,
    CalendarDays,
    ClaimedReminder,
    Clock,
    Customer,
    DateException,
    DaySchedule,
    DepositKind,
    DepositRule,
    HistoryEntry,
    NoShowAction,
    NoShowStanding,
    ReportSummary,
    Service,
    Slot,
    Staff,
    WaitlistEntry,
    WorkInterval,
    utc_now,
)
from tenant_bot.booking.no_shows import NoShowService
from tenant_bot.booking.notices import ClaimedNotice, NoticeOutbox
from tenant_bot.booking.phones import mask_phone, normalize_phone
from tenant_bot.booking.reminders import ReminderService
from tenant_bot.booking.reports import ReportService
from tenant_bot.booking.repositories.bookings import init_connection
from tenant_bot.booking.reviews import ReviewService
from tenant_bot.booking.service import BookingService
from tenant_bot.booking.waitlist import WaitlistService


class BookingCore:
    """The facade the tenant bot holds (one per process, built in its entry point from its pool)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = utc_now,
        acquire_timeout: float | None = None,
        outages: StorageOutages | None = None,
    ) -> None:
        db = Database(pool, acquire_timeout=acquire_timeout, outages=outages)
        # requests that found the database unavailable, by cause (the heartbeat carries them)
        self.outages = db.outages
        cache = CatalogueCache()
        self.catalogue = CatalogueService(db, clock=clock, cache=cache)
        self.customers = CustomerService(db, clock=clock)
        self.slots = SlotService(db, clock=clock)
        self.no_shows = NoShowService(db, cache=cache, clock=clock)
        self.bookings = BookingService(db, clock=clock, cache=cache, no_shows=self.no_shows)
        self.reminders = ReminderService(db, clock=clock)
        self.notices = NoticeOutbox(db, clock=clock)  # durable new-booking notices (0070)
        self.attendance = AttendanceService(db, clock=clock)
        self.completion = CompletionService(db, clock=clock)
        self.waitlist = WaitlistService(db, clock=clock)
        self.reports = ReportService(db, clock=clock)
        self.deposits = DepositService(db, catalogue=self.catalogue, clock=clock)
        self.closures = ClosureService(db, clock=clock, cache=cache)
        self.clients = ClientBook(db, clock=clock)
        self.holidays = HolidayService(db, clock=clock, cache=cache)
        self.reviews = ReviewService(db, clock=clock)
        self.broadcasts = BroadcastService(db, clock=clock)
        self.calendar = CalendarReads(db)  # calendar files: how often bookings were moved
        self.analytics = AnalyticsService(db)  # the owner's statistics


__all__ = [
    "WEEK",
    "WORKWEEK",
    "Actor",
    "ActorKind",
    "BlockedPeriod",
    "Booking",
    "BookingCore",
    "BookingDetails",
    "BookingError",
    "BookingStatus",
    "BusinessSettings",
    "CalendarDays",
    "CatalogueReader",
    "ClaimedNotice",
    "ClaimedReminder",
    "ClientCard",
    "Clock",
    "Closure",
    "Customer",
    "DateException",
    "DaySchedule",
    "DepositKind",
    "DepositRule",
    "HistoryEntry",
    "Holiday",
    "NoShowAction",
    "NoShowStanding",
    "ReportSummary",
    "Service",
    "Slot",
    "Staff",
    "StorageOutages",
    "WaitlistEntry",
    "WorkInterval",
    "init_connection",
    "mask_phone",
    "normalize_phone",
    "parse_day_hours",
    "utc_now",
]
