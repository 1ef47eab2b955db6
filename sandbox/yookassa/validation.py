"""Validation of ``POST /v3/payments`` bodies with YooKassa's error wording and parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.yookassa.errors import invalid_request

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^\d{1,10}(\.\d{1,2})?$")


@dataclass(frozen=True)
class PaymentCreate:
    """A validated request to create a payment."""

    amount: Decimal
    currency: str
    description: str | None
    metadata: dict[str, str] | None
    capture: bool
    confirmation_type: str | None
    return_url: str | None
    save_payment_method: bool
    payment_method_id: str | None
    payment_method_type: str | None
    merchant_customer_id: str | None
    # the cleaned 54-FZ receipt (see :mod:`sandbox.yookassa.receipts`), set by the API after parsing
    receipt: dict[str, Any] | None = None


def parse_amount(raw: Any, parameter: str = "amount") -> tuple[Decimal, str]:
    """``{"value": "10.00", "currency": "RUB"}`` -> (Decimal, currency)."""
    if not isinstance(raw, dict):
        raise invalid_request(f"Parameter {parameter} is required", parameter)
    value = raw.get("value")
    if value is None:
        raise invalid_request(f"Parameter {parameter}.value is required", f"{parameter}.value")
    text = str(value)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(-1)
    if not _AMOUNT.match(text) or amount <= 0:
        raise invalid_request(
            f"Invalid {parameter}.value: expected a positive number with up to 2 decimals",
            f"{parameter}.value",
        )
    currency = raw.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise invalid_request(
            f"Invalid {parameter}.currency: expected an ISO-4217 code like RUB",
            f"{parameter}.currency",
        )
    return amount.quantize(Decimal("0.01")), currency


def _metadata(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) > 16:
        raise invalid_request("Invalid metadata: an object of at most 16 keys", "metadata")
    cleaned: dict[str, str] = {}
    for key, value in raw.items():
        if len(str(key)) > 32 or value is None or len(str(value)) > 512:
            raise invalid_request(
                "Invalid metadata: keys up to 32 characters, values up to 512", "metadata"
            )
        cleaned[str(key)] = str(value)
    return cleaned


def _confirmation(raw: Any, *, required: bool) -> tuple[str | None, str | None]:
    if raw is None:
        if required:
            raise invalid_request("Parameter confirmation is required", "confirmation")
        return None, None
    if not isinstance(raw, dict) or raw.get("type") not in ("redirect", "embedded", "external"):
        raise invalid_request(
            "Invalid confirmation.type: redirect, embedded or external", "confirmation.type"
        )
    return_url = raw.get("return_url")
    valid_url = isinstance(return_url, str) and re.match(r"^https?://\S+$", return_url)
    if raw["type"] == "redirect" and not valid_url:
        raise invalid_request(
            "Parameter confirmation.return_url is required for redirect",
            "confirmation.return_url",
        )
    return raw["type"], return_url


def parse_create(body: dict[str, Any]) -> PaymentCreate:
    """Validate a create-payment body; raises YooKassa's ``invalid_request``."""
    amount, currency = parse_amount(body.get("amount"))
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 128):
        raise invalid_request(
            "Invalid description: a string of up to 128 characters", "description"
        )
    method_id = body.get("payment_method_id")
    if method_id is not None and not isinstance(method_id, str):
        raise invalid_request("Invalid payment_method_id", "payment_method_id")
    method_data = body.get("payment_method_data")
    method_type = None
    if method_data is not None:
        if not isinstance(method_data, dict) or not isinstance(method_data.get("type"), str):
            raise invalid_request(
                "Parameter payment_method_data.type is required", "payment_method_data.type"
            )
        method_type = method_data["type"]
    confirmation_type, return_url = _confirmation(
        body.get("confirmation"), required=method_id is None
    )
    capture = body.get("capture", False)
    save = body.get("save_payment_method", False)
    if not isinstance(capture, bool) or not isinstance(save, bool):
        raise invalid_request("Invalid capture/save_payment_method: booleans expected", "capture")
    return PaymentCreate(
        amount=amount,
        currency=currency,
        description=description,
        metadata=_metadata(body.get("metadata")),
        capture=capture,
        confirmation_type=confirmation_type,
        return_url=return_url,
        save_payment_method=save,
        payment_method_id=method_id,
        payment_method_type=method_type,
        merchant_customer_id=body.get("merchant_customer_id"),
    )
