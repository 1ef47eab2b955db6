"""The events of the ``control.events`` outbox: one payload model per kind, a typed contract.

Producers (billing, the lifecycle, the deploy worker, the control plane) build the model and store
:meth:`Event.payload`; the sales bot parses it back with :func:`parse_event` and hands its fields to the
template ``event_<kind with _ for .>`` of ``templates/sales_bot``. A field a template needs is a field of
the model, so a producer that forgets it fails where it builds the event (and in the contract test,
``tests/fleet/test_event_contract.py``), never in an owner's chat.

``for_owner`` says whether the sales bot tells the tenant's owners; the other kinds are records for
operators (a crash loop and its recovery), kept in the outbox for the history and never delivered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "EVENTS",
    "OWNER_EVENT_KINDS",
    "Event",
    "EventContractError",
    "PaymentCanceled",
    "PaymentRefundNeeded",
    "PaymentRefunded",
    "PaymentSucceeded",
    "SubscriptionExpired",
    "SubscriptionReminder",
    "SubscriptionRenewalFailed",
    "TenantDegraded",
    "TenantDeleted",
    "TenantDeletionWarning",
    "TenantFailed",
    "TenantLive",
    "TenantRecovered",
    "TenantSuspended",
    "parse_event",
]

Money = str  # "990.00": exact, two decimals


class Event(BaseModel):
    """One outbox payload. Subclasses set ``kind`` (and ``for_owner`` when operators only)."""

    # Old rows may carry keys a newer version dropped: ignore them rather than fail delivery.
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: ClassVar[str]
    for_owner: ClassVar[bool] = True

    def payload(self) -> dict[str, Any]:
        """The JSON stored in ``control.events.payload``."""
        return self.model_dump(mode="json")

    @classmethod
    def template(cls) -> str:
        """The sales bot's template for this kind: ``event_payment_succeeded``."""
        return "event_" + cls.kind.replace(".", "_")


class PaymentSucceeded(Event):
    """A payment was applied: the subscription is extended and the bot provisioned or resumed."""

    kind: ClassVar[str] = "payment.succeeded"
    payment_id: str
    amount: Money
    currency: str
    purpose: str
    action: Literal["provision", "resume", "extend"]
    paid_until: datetime
    plan_name: str


class PaymentCanceled(Event):
    """A payment the owner started did not go through; nothing was charged."""

    kind: ClassVar[str] = "payment.canceled"
    payment_id: str
    reason: str
    party: str | None = None
    purpose: str
    amount: Money
    currency: str


class SubscriptionRenewalFailed(PaymentCanceled):
    """An automatic charge of the saved payment method was refused."""

    kind: ClassVar[str] = "subscription.renewal_failed"
    # what the owner can still do: pay by hand before ``paid_until``; the bot stops at ``suspend_at``
    paid_until: datetime | None = None
    suspend_at: datetime | None = None


class PaymentRefundNeeded(Event):
    """Money arrived for a bot that was deleted meanwhile: an operator refunds it."""

    kind: ClassVar[str] = "payment.refund_needed"
    payment_id: str
    amount: Money
    currency: str
    purpose: str


class PaymentRefunded(Event):
    """Money of a payment went back to the owner (issue 18). ``effect``: ``none`` (a partial refund:
    the subscription stays), ``period_taken_back`` (a full refund of a period still ahead: the bot
    is paid until ``paid_until``), ``subscription_ended`` (a full refund of the current period: the
    bot is stopped, its data kept until ``delete_at``)."""

    kind: ClassVar[str] = "payment.refunded"
    payment_id: str
    amount: Money
    currency: str
    refunded_total: Money
    paid: Money
    effect: Literal["none", "period_taken_back", "subscription_ended"]
    paid_until: datetime | None = None
    delete_at: datetime | None = None


class SubscriptionReminder(Event):
    """The paid period ends in ``days_left`` days."""

    kind: ClassVar[str] = "subscription.reminder"
    days_left: int = Field(ge=0)
    paid_until: datetime
    auto_renew: bool
    # the next period's terms: what will be charged (or is to be paid), when, for how long, on what
    # plan, to which card (older rows lack them)
    amount: Money | None = None
    currency: str | None = None
    charge_at: datetime | None = None
    period_days: int | None = None
    plan_name: str | None = None
    card: str | None = None


class SubscriptionExpired(Event):
    """The paid period ended; the bot keeps running until ``suspend_at`` (the grace period)."""

    kind: ClassVar[str] = "subscription.expired"
    paid_until: datetime
    suspend_at: datetime


class TenantSuspended(Event):
    """The bot was stopped: for non-payment (data kept until ``delete_at``) or by an operator."""

    kind: ClassVar[str] = "tenant.suspended"
    reason: Literal["unpaid", "operator"]
    delete_at: datetime | None = None

    @model_validator(mode="after")
    def _unpaid_says_until_when(self) -> TenantSuspended:
        if self.reason == "unpaid" and self.delete_at is None:
            raise ValueError(
                "delete_at: a suspension for non-payment must say when the data is deleted"
            )
        return self


class TenantDeletionWarning(Event):
    """A suspended tenant's data will be deleted at ``delete_at``."""

    kind: ClassVar[str] = "tenant.deletion_warning"
    delete_at: datetime


class TenantDeleted(Event):
    """The tenant's bot and data were removed (``export``: after an export)."""

    kind: ClassVar[str] = "tenant.deleted"
    export: bool = False


class TenantLive(Event):
    """The bot answers: first start after a purchase, or back after a suspension."""

    kind: ClassVar[str] = "tenant.live"
    bot_username: str | None
    previous_status: str


class TenantFailed(Event):
    """Provisioning gave up; operators are on it (``reason`` is for them, not shown to owners)."""

    kind: ClassVar[str] = "tenant.failed"
    reason: str
    bot_username: str | None


class TenantDegraded(Event):
    """The bot crash-loops (operators only)."""

    kind: ClassVar[str] = "tenant.degraded"
    for_owner: ClassVar[bool] = False
    reason: str
    restarts: int


class TenantRecovered(Event):
    """A degraded bot runs quietly again (operators only)."""

    kind: ClassVar[str] = "tenant.recovered"
    for_owner: ClassVar[bool] = False
    bot_username: str | None = None
    previous_status: str | None = None


EVENTS: dict[str, type[Event]] = {
    model.kind: model
    for model in (
        PaymentSucceeded,
        PaymentCanceled,
        PaymentRefundNeeded,
        PaymentRefunded,
        SubscriptionReminder,
        SubscriptionExpired,
        SubscriptionRenewalFailed,
        TenantSuspended,
        TenantDeletionWarning,
        TenantDeleted,
        TenantLive,
        TenantFailed,
        TenantDegraded,
        TenantRecovered,
    )
}
OWNER_EVENT_KINDS: tuple[str, ...] = tuple(k for k, m in EVENTS.items() if m.for_owner)


class EventContractError(ValueError):
    """A stored event that no model accepts: an unknown kind or a payload breaking its model."""


def parse_event(kind: str, payload: dict[str, Any] | None) -> Event:
    """The model of a stored event; raises :class:`EventContractError` saying what is wrong."""
    model = EVENTS.get(kind)
    if model is None:
        raise EventContractError(f"unknown event kind {kind!r}")
    try:
        return model.model_validate(payload or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        raise EventContractError(f"{kind} payload breaks its contract: {problems}") from None
