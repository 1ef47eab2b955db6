"""The tenant bot's unsolicited messages (notices): one model per kind, a typed contract.

A notice is what the bot sends without being asked: an owner told of a new, cancelled or moved
booking, a customer told that the business confirmed, cancelled or moved theirs, a reminder, the
owners' "did they come?" card after a booking ended, a waitlisted customer told that a time is free.

Each kind has one model here, and the model's fields are exactly the arguments of its template (the
jinja2 macro named :attr:`Notice.template` in ``templates/tenant_bot/<locale>.j2``, every locale).
The notifier builds the model from the booking (``tenant_bot.views.facts``) and renders
``texts(locale, notice.template, **notice.values())``; it renders no notice any other way. So a
value a template needs is a required field of the model: a producer that forgets it fails where it
builds the notice, and ``tests/tenant_bot/test_notice_contract.py`` proves every kind renders in every
locale from the real code paths, and that models and templates agree field for field.

The values are already formatted for the recipient's locale (dates, money, status names): the
templates only place them. Notice templates are named for their recipient (``owner_*``,
``customer_*``), except the older ``reminder`` and ``waitlist_free``.

Like every module of :mod:`schemas`, this imports nothing of the platform or the tenant bot.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, StringConstraints

__all__ = [
    "NOTICES",
    "NOTICE_TEMPLATE_PREFIXES",
    "OTHER_NOTICE_TEMPLATES",
    "BookingFacts",
    "BookingNotice",
    "CompletionCard",
    "CustomerBooked",
    "CustomerCancelled",
    "CustomerConfirmed",
    "CustomerMoved",
    "Notice",
    "OwnerCancelled",
    "OwnerMoved",
    "OwnerNewBooking",
    "Recipient",
    "Reminder",
    "WaitlistFree",
    "is_notice_template",
]

Recipient = Literal["owner", "customer"]
# A value we format ourselves (a date, a price, a status name): never empty.
Formatted = Annotated[str, StringConstraints(min_length=1)]

NOTICE_TEMPLATE_PREFIXES: tuple[str, ...] = ("owner_", "customer_")
OTHER_NOTICE_TEMPLATES: frozenset[str] = frozenset({"reminder", "waitlist_free"})


class BookingFacts(BaseModel):
    """What every booking text shows, formatted for one locale (screens use it too).

    Free-text values typed by owners and customers may be empty (no phone given, no address set);
    ``None`` is never a value: an absent one is ``""``, which the templates leave out.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    staff: str
    when: Formatted
    price: Formatted
    customer: str
    phone: str
    status: Formatted
    business: str
    address: str
    map_url: str
    business_phone: str


class Notice(BaseModel):
    """One notice's values. Subclasses set ``kind`` and ``recipient``; the template is the kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    recipient: ClassVar[Recipient]

    @classmethod
    def template(cls) -> str:
        """The macro of ``templates/tenant_bot/<locale>.j2`` that renders this kind."""
        return cls.kind

    def values(self) -> dict[str, Any]:
        """The template's keyword arguments."""
        return self.model_dump()


class BookingNotice(Notice, BookingFacts):
    """A notice about one booking: its facts, plus the kind's own extras."""

    @classmethod
    def of(cls, facts: BookingFacts, **extra: str) -> Self:
        """This kind of notice for a booking's ``facts`` (in the recipient's locale)."""
        return cls(**facts.model_dump(), **extra)


class OwnerNewBooking(BookingNotice):
    """A customer booked (the card lets the owner confirm, move or cancel)."""

    kind: ClassVar[str] = "owner_new_booking"
    recipient: ClassVar[Recipient] = "owner"


class CustomerBooked(BookingNotice):
    """The customer's own booking went through, sent when the checkout could not show it (the
    database refused right after the commit): the durable copy of its confirmation screen."""

    kind: ClassVar[str] = "customer_booked"
    recipient: ClassVar[Recipient] = "customer"


class CustomerConfirmed(BookingNotice):
    """The owner confirmed the customer's booking."""

    kind: ClassVar[str] = "customer_confirmed"
    recipient: ClassVar[Recipient] = "customer"


class OwnerCancelled(BookingNotice):
    """A booking was cancelled by the customer or another owner (``reason`` may be empty)."""

    kind: ClassVar[str] = "owner_cancelled"
    recipient: ClassVar[Recipient] = "owner"
    reason: str


class CustomerCancelled(BookingNotice):
    """The business cancelled the customer's booking (``reason`` may be empty)."""

    kind: ClassVar[str] = "customer_cancelled"
    recipient: ClassVar[Recipient] = "customer"
    reason: str


class OwnerMoved(BookingNotice):
    """A booking was moved by the customer or another owner, from ``old_when``."""

    kind: ClassVar[str] = "owner_moved"
    recipient: ClassVar[Recipient] = "owner"
    old_when: Formatted


class CustomerMoved(BookingNotice):
    """The business moved the customer's booking, from ``old_when``."""

    kind: ClassVar[str] = "customer_moved"
    recipient: ClassVar[Recipient] = "customer"
    old_when: Formatted


class Reminder(BookingNotice):
    """A booking is coming up (one per reminder offset)."""

    kind: ClassVar[str] = "reminder"
    recipient: ClassVar[Recipient] = "customer"


class CustomerReleased(BookingNotice):
    """The customer did not confirm a reminded booking by the owner's release time: it is cancelled
    and its time offered to others."""

    kind: ClassVar[str] = "customer_released"
    recipient: ClassVar[Recipient] = "customer"


class CompletionCard(BookingNotice):
    """A booking ended: did the customer come? (the owner's answer marks done / no-show)."""

    kind: ClassVar[str] = "owner_did_they_come"
    recipient: ClassVar[Recipient] = "owner"


class WaitlistFree(Notice):
    """A time is free on the ``day`` a waitlisted customer asked for."""

    kind: ClassVar[str] = "waitlist_free"
    recipient: ClassVar[Recipient] = "customer"
    day: Formatted


NOTICES: dict[str, type[Notice]] = {
    model.kind: model
    for model in (
        OwnerNewBooking,
        CustomerBooked,
        CustomerConfirmed,
        OwnerCancelled,
        CustomerCancelled,
        OwnerMoved,
        CustomerMoved,
        Reminder,
        CustomerReleased,
        CompletionCard,
        WaitlistFree,
    )
}


def is_notice_template(key: str) -> bool:
    """Whether a tenant-bot template key names a notice (so it must belong to a kind above)."""
    return key.startswith(NOTICE_TEMPLATE_PREFIXES) or key in OTHER_NOTICE_TEMPLATES
