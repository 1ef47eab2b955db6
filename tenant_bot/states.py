"""FSM states of the conversations that need typed input or a multi-step choice (kept in Redis)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class BookingFlow(StatesGroup):
    """A customer booking: service -> staff -> day -> time -> name -> phone -> confirm."""

    service = State()
    staff = State()
    day = State()
    time = State()
    name = State()
    phone = State()
    confirm = State()


class RescheduleFlow(StatesGroup):
    """A customer moving a booking: day -> time -> confirm."""

    day = State()
    time = State()
    confirm = State()


class OwnerInput(StatesGroup):
    """The owner is asked to type something; ``data['input']`` says what and for which record."""

    cancel_reason = State()
    block_period = State()
    service_form = State()
    staff_name = State()
    hours = State()
    setting = State()
    export_range = State()
    stats_range = State()  # issue 20: statistics for typed dates
    profile = State()
    move_day = State()
    move_time = State()
    date_hours = State()
    closure_days = State()
    client_search = State()
    client_edit = State()
    holiday_country = State()


class OwnerBookingFlow(StatesGroup):
    """The owner books for a caller or a walk-in: service -> staff -> day -> time -> customer
    (-> name of a new one) -> confirm."""

    service = State()
    staff = State()
    day = State()
    time = State()
    customer = State()
    name = State()
    confirm = State()


class ReviewFlow(StatesGroup):
    """A customer who rated a visit may type a comment (``data['review']`` names the booking);
    the owner types the ratings' threshold."""

    comment = State()
    threshold = State()


class MailingFlow(StatesGroup):
    """The owner writing a mailing: text (or photo) -> audience (-> days) -> preview and send."""

    text = State()
    days = State()
    confirm = State()


class DeskInput(StatesGroup):
    """A staff member at the /staff desk types something: the reason for cancelling one of their
    bookings (``data['booking_id']``)."""

    cancel_reason = State()
