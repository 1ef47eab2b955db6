"""The billing part of the settings, as one immutable object handed to billing services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fleet.settings import Settings


class Clock(Protocol):
    """Returns "now" (aware, UTC); injected so tests move time without sleeping."""

    def __call__(self) -> datetime: ...


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class BillingConfig:
    """Periods, offsets and receipt options of billing. Build with :meth:`from_settings`."""

    return_url: str = "https://t.me/"
    grace: timedelta = timedelta(days=3)
    retention: timedelta = timedelta(days=30)
    deletion_warning: timedelta = timedelta(days=7)
    reminder_days: tuple[int, ...] = (3, 1)
    autorenew_lead: timedelta = timedelta(hours=24)
    abandoned_after: timedelta = timedelta(hours=72)
    # an unpaid checkout younger than this is offered again instead of a new payment
    checkout_reuse: timedelta = timedelta(minutes=50)
    receipts: bool = False
    vat_code: int = 1
    tax_system_code: int | None = None
    payment_subject: str = "service"
    payment_mode: str = "full_payment"

    @classmethod
    def from_settings(cls, settings: Settings) -> BillingConfig:
        return cls(
            return_url=settings.require("yookassa_return_url"),
            grace=timedelta(days=settings.billing_grace_days),
            retention=timedelta(days=settings.billing_retention_days),
            deletion_warning=timedelta(days=settings.billing_deletion_warning_days),
            reminder_days=tuple(settings.billing_reminder_days),
            autorenew_lead=timedelta(hours=settings.billing_autorenew_lead_hours),
            abandoned_after=timedelta(hours=settings.billing_abandoned_after_hours),
            receipts=settings.yookassa_receipts,
            vat_code=settings.yookassa_vat_code,
            tax_system_code=settings.yookassa_tax_system_code,
            payment_subject=settings.yookassa_payment_subject,
            payment_mode=settings.yookassa_payment_mode,
        )
