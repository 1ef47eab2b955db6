"""Refunds of the stand-in, shaped like YooKassa API v3 refund objects.

``POST /v3/refunds`` takes ``payment_id``, ``amount`` (at most what is left to refund of a succeeded
payment), an optional ``description`` and, for a shop that sends receipts, ``receipt`` (required for a
partial refund; a full refund reuses the payment's receipt, as YooKassa does). A refund is
``succeeded`` at once (bank cards), or ``pending`` until the control API settles it when the stand-in
is told to settle refunds later; ``refund.succeeded`` is notified either way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandbox.yookassa.errors import invalid_request
from sandbox.yookassa.payments import iso, money
from sandbox.yookassa.validation import parse_amount


@dataclass(frozen=True)
class RefundCreate:
    """A validated request to create a refund (the receipt is checked against the payment)."""

    payment_id: str
    amount: Decimal
    currency: str
    description: str | None
    receipt_raw: Any


def parse_refund_create(body: dict[str, Any]) -> RefundCreate:
    """Validate a create-refund body; raises YooKassa's ``invalid_request``."""
    payment_id = body.get("payment_id")
    if not isinstance(payment_id, str) or not payment_id:
        raise invalid_request("Parameter payment_id is required", "payment_id")
    amount, currency = parse_amount(body.get("amount"))
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 250):
        raise invalid_request(
            "Invalid description: a string of up to 250 characters", "description"
        )
    return RefundCreate(
        payment_id=payment_id,
        amount=amount,
        currency=currency,
        description=description,
        receipt_raw=body.get("receipt"),
    )


def refund_id() -> str:
    """An id in YooKassa's refund format (``216749f7-0016-50be-b000-078d43a63ae4``)."""
    raw = uuid.uuid4().hex
    return f"{raw[:8]}-0016-50be-b000-{raw[20:32]}"


@dataclass
class Refund:
    """One refund; :meth:`to_api` renders the exact API object."""

    id: str
    payment_id: str
    amount: Decimal
    currency: str
    created_at: datetime
    description: str | None
    receipt: dict[str, Any] | None
    receipt_expected: bool
    status: str = "pending"

    def to_api(self) -> dict[str, Any]:
        """The refund as ``GET /v3/refunds/{id}`` returns it."""
        data: dict[str, Any] = {
            "id": self.id,
            "payment_id": self.payment_id,
            "status": self.status,
            "created_at": iso(self.created_at),
            "amount": money(self.amount, self.currency),
        }
        if self.description is not None:
            data["description"] = self.description
        if self.receipt_expected:
            data["receipt_registration"] = "succeeded" if self.status == "succeeded" else "pending"
        return data
