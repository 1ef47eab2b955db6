"""Payments of the stand-in and their lifecycle, shaped like YooKassa API v3 objects.

``pending`` --pay--> ``succeeded`` (capture=true) or ``waiting_for_capture`` --capture--> ``succeeded``;
``pending``/``waiting_for_capture`` --cancel--> ``canceled`` with ``cancellation_details``.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.yookassa.validation import PaymentCreate

_FEE = Decimal("0.035")  # YooKassa's typical card fee, to make income_amount realistic


def money(value: Decimal, currency: str) -> dict[str, str]:
    """YooKassa's amount object with two decimals."""
    return {"value": f"{value.quantize(Decimal('0.01'))}", "currency": currency}


def iso(moment: datetime) -> str:
    """Timestamps as YooKassa writes them: ``2024-05-01T10:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def payment_id() -> str:
    """An id in YooKassa's format (``2b0a7a4b-000f-5000-9000-1c1a3c0bde8f``)."""
    raw = uuid.uuid4().hex
    return f"{raw[:8]}-000f-5000-{secrets.choice('89ab')}000-{raw[20:32]}"


@dataclass
class Payment:
    """One payment; :meth:`to_api` renders the exact API object."""

    id: str
    request: PaymentCreate
    shop_id: str
    created_at: datetime
    confirmation_url: str | None
    status: str = "pending"
    paid: bool = False
    captured_at: datetime | None = None
    expires_at: datetime | None = None
    payment_method: dict[str, Any] | None = None
    cancellation_details: dict[str, str] | None = None
    captured_amount: Decimal | None = None
    refunded_amount: Decimal = Decimal(0)
    events: list[str] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        """The amount charged (a partial capture may lower it)."""
        return self.captured_amount or self.request.amount

    def to_api(self) -> dict[str, Any]:
        """The payment as ``GET /v3/payments/{id}`` returns it."""
        req = self.request
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "amount": money(self.amount, req.currency),
            "recipient": {"account_id": self.shop_id, "gateway_id": f"{self.shop_id}0"},
            "created_at": iso(self.created_at),
            "test": True,
            "paid": self.paid,
            "refundable": self.status == "succeeded" and self.refunded_amount < self.amount,
            "metadata": dict(req.metadata or {}),
        }
        if req.description is not None:
            data["description"] = req.description
        if self.status == "pending" and req.confirmation_type is not None:
            confirmation: dict[str, Any] = {"type": req.confirmation_type}
            if req.confirmation_type == "redirect":
                confirmation["confirmation_url"] = self.confirmation_url
                confirmation["return_url"] = req.return_url
            data["confirmation"] = confirmation
        if self.payment_method is not None:
            data["payment_method"] = self.payment_method
        if self.status == "succeeded":
            data["income_amount"] = money(self.amount * (1 - _FEE), req.currency)
            data["refunded_amount"] = money(self.refunded_amount, req.currency)
        if req.receipt is not None:
            data["receipt_registration"] = "succeeded" if self.paid else "pending"
        if self.paid:
            data["authorization_details"] = {
                "rrn": str(int(self.created_at.timestamp()))[-12:].rjust(12, "0"),
                "auth_code": self.id[:6].upper(),
                "three_d_secure": {"applied": False},
            }
        if self.captured_at is not None:
            data["captured_at"] = iso(self.captured_at)
        if self.expires_at is not None and self.status == "waiting_for_capture":
            data["expires_at"] = iso(self.expires_at)
        if self.cancellation_details is not None:
            data["cancellation_details"] = self.cancellation_details
        if req.merchant_customer_id:
            data["merchant_customer_id"] = req.merchant_customer_id
        return data

    def mark_paid(self, *, method: dict[str, Any], now: datetime) -> str:
        """The payer confirmed; returns the notification event to send."""
        self.paid = True
        self.payment_method = method
        if self.request.capture:
            self.status = "succeeded"
            self.captured_at = now
            return "payment.succeeded"
        self.status = "waiting_for_capture"
        self.expires_at = now + timedelta(days=7)
        return "payment.waiting_for_capture"

    def capture(self, *, amount: Decimal | None, now: datetime) -> None:
        """Capture a ``waiting_for_capture`` payment (fully or partly)."""
        self.status = "succeeded"
        self.captured_at = now
        self.captured_amount = amount

    def cancel(self, *, party: str, reason: str) -> None:
        """Cancel with YooKassa's ``cancellation_details``."""
        self.status = "canceled"
        self.paid = False
        self.cancellation_details = {"party": party, "reason": reason}


def card_method(
    *, method_type: str | None, saved: bool, method_id: str | None = None
) -> dict[str, Any]:
    """A paid-with payment method, as YooKassa describes a test card."""
    kind = method_type or "bank_card"
    method: dict[str, Any] = {
        "type": kind,
        "id": method_id or str(uuid.uuid4()),
        "saved": saved,
        "status": "active" if saved else "inactive",
    }
    if kind == "bank_card":
        method["title"] = "Bank card *4477"
        method["card"] = {
            "first6": "555555",
            "last4": "4477",
            "expiry_month": "12",
            "expiry_year": str(datetime.now(UTC).year + 3),
            "card_type": "MasterCard",
            "issuer_country": "RU",
        }
    return method
