"""Values of the features that bring customers back: reviews and mailings (issue 20).

Immutable dataclasses the services return and the bot renders, like :mod:`.models`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tenant_bot.booking.models import BookingDetails

# Telegram's limits on what a bot sends, counted after formatting is parsed, in UTF-16 code units:
# a text message holds 4096 characters, a photo's caption only 1024 (a Premium owner may send the
# bot a photo with a longer caption, which the bot could not send on).
MESSAGE_MAX_CHARS = 4096
PHOTO_CAPTION_MAX_CHARS = 1024


def telegram_length(text: str) -> int:
    """The length of a text as Telegram counts it (UTF-16 code units: an emoji may count two)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class OutreachSettings:
    """The owner's choices for reviews: ask after a visit or not, and how many visible reviews a
    business or a staff member needs before its rating shows to customers."""

    reviews_enabled: bool
    review_min_count: int


@dataclass(frozen=True, slots=True)
class Review:
    """One customer's rating of one visit (1-5 stars) and an optional comment."""

    booking_id: int
    customer_id: int
    staff_id: int
    service_id: int
    stars: int
    comment: str
    hidden: bool
    created_at: datetime
    customer_name: str
    staff_name: str
    service_name: str


@dataclass(frozen=True, slots=True)
class StaffRating:
    """A staff member's visible reviews: how many, and the sum of their stars."""

    staff_id: int
    reviews: int
    stars: int

    @property
    def average(self) -> float:
        return self.stars / self.reviews if self.reviews else 0.0


@dataclass(frozen=True, slots=True)
class Rating:
    """An average and a count, as customers see them."""

    average: float
    count: int


@dataclass(frozen=True, slots=True)
class Ratings:
    """What customers may see: the business's rating and each staff member's, each only once it
    has at least the owner's threshold of visible reviews (None before)."""

    business: Rating | None
    staff: dict[int, Rating]


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """A claimed request to ask a customer about a visit (``attempts`` counts this one)."""

    details: BookingDetails
    attempts: int
    claim_token: str


class Audience(StrEnum):
    """Who a mailing goes to (opted-out customers never)."""

    ALL = "all"  # every customer
    RECENT = "recent"  # visited in the last N days
    LAPSED = "lapsed"  # visited before, not in the last N days, nothing booked ahead (win-back)
    SERVICE = "service"  # ever booked a given service (not cancelled)


@dataclass(frozen=True, slots=True)
class AudienceChoice:
    """An audience with its parameter (``days`` for recent/lapsed, ``service_id`` for service)."""

    kind: Audience
    days: int | None = None
    service_id: int | None = None


class RecipientState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    BLOCKED = "blocked"  # the customer blocked the bot (or deleted their account)
    FAILED = "failed"
    SKIPPED = "skipped"  # opted out after the mailing was confirmed


@dataclass(frozen=True, slots=True)
class BroadcastCounts:
    """How far a mailing got, per recipient state."""

    total: int
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0

    @property
    def settled(self) -> int:
        return self.sent + self.blocked + self.failed + self.skipped


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A mailing: what is sent, to whom, and where its progress is shown."""

    id: int
    text: str
    photo_file_id: str | None
    audience: AudienceChoice
    status: str  # sending | done | cancelled
    recipients: int
    created_by: int
    progress_chat_id: int | None
    progress_message_id: int | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Recipient:
    """One customer of a mailing, claimed for sending."""

    customer_id: int
    chat_id: int
    attempts: int
    locale: str | None = None
