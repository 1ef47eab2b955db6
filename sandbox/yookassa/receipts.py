"""54-FZ receipt data (``receipt``) checked as YooKassa checks it for a shop that must send receipts.

A shop connected to YooKassa's 54-FZ solution must send ``receipt`` with every payment (and with every
partial refund); YooKassa refuses the request otherwise with ``400 invalid_request`` naming the
parameter. What is checked (YooKassa API v3, "receipt" object):

- ``customer``: ``email`` or ``phone`` (ITU-T E.164 digits, e.g. ``79000000000``), at least one;
- ``items``: 1..100 lines, each with ``description`` (1..128 characters), ``quantity`` (> 0, up to 3
  decimals), ``amount`` (the price of ONE unit, in the payment's currency), ``vat_code`` 1..12
  (11 = VAT 22%, 12 = VAT 22/122, valid from 2026), ``payment_subject`` and ``payment_mode`` from
  YooKassa's lists; the sum of ``amount * quantity`` must equal the payment (or refund) amount;
- ``tax_system_code`` 1..6, required when the shop has several tax systems
  (:attr:`ReceiptRules.tax_system_required`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.yookassa.errors import invalid_request
from sandbox.yookassa.validation import parse_amount

PAYMENT_SUBJECTS = frozenset(
    {
        "commodity",
        "excise",
        "job",
        "service",
        "gambling_bet",
        "gambling_prize",
        "lottery",
        "lottery_prize",
        "intellectual_activity",
        "payment",
        "agent_commission",
        "property_right",
        "non_operating_gain",
        "insurance_premium",
        "sales_tax",
        "resort_fee",
        "composite",
        "another",
        "fine",
        "tax",
        "lien",
        "cost",
        "pension_insurance_without_payouts",
        "pension_insurance_with_payouts",
        "health_insurance_without_payouts",
        "health_insurance_with_payouts",
        "health_insurance",
        "casino",
        "agent_withdrawals",
        "non_marked_excise",
        "marked_excise",
        "marked",
        "non_marked",
    }
)
PAYMENT_MODES = frozenset(
    {
        "full_prepayment",
        "partial_prepayment",
        "advance",
        "full_payment",
        "partial_payment",
        "credit",
        "credit_payment",
    }
)
MAX_ITEMS = 100
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^[1-9]\d{6,14}$")
_QUANTITY = re.compile(r"^\d{1,10}(\.\d{1,3})?$")


@dataclass(frozen=True)
class ReceiptRules:
    """What the shop's 54-FZ settings demand: receipts at all, and the tax system on each."""

    required: bool = False
    tax_system_required: bool = False


def _money(raw: Any, parameter: str, currency: str) -> Decimal:
    value, item_currency = parse_amount(raw, parameter)
    if item_currency != currency:
        raise invalid_request(
            f"Invalid {parameter}.currency: must be the payment's currency {currency}",
            f"{parameter}.currency",
        )
    return value


def _int_in(raw: Any, low: int, high: int) -> int | None:
    if isinstance(raw, bool):
        return None
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if low <= value <= high else None


def _customer(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not (raw.get("email") or raw.get("phone")):
        raise invalid_request(
            "Receipt customer contact is missing: specify receipt.customer.email or "
            "receipt.customer.phone",
            "receipt.customer",
        )
    customer: dict[str, str] = {}
    if raw.get("email"):
        if not isinstance(raw["email"], str) or not _EMAIL.match(raw["email"]):
            raise invalid_request(
                "Invalid receipt.customer.email: an e-mail address like name@example.com",
                "receipt.customer.email",
            )
        customer["email"] = raw["email"]
    if raw.get("phone"):
        if not isinstance(raw["phone"], str) or not _PHONE.match(raw["phone"]):
            raise invalid_request(
                "Invalid receipt.customer.phone: ITU-T E.164 digits without '+', e.g. 79000000000",
                "receipt.customer.phone",
            )
        customer["phone"] = raw["phone"]
    if isinstance(raw.get("full_name"), str):
        customer["full_name"] = raw["full_name"][:256]
    return customer


def _item(raw: Any, index: int, currency: str) -> dict[str, Any]:
    where = f"receipt.items[{index}]"
    if not isinstance(raw, dict):
        raise invalid_request(f"Invalid {where}: an object expected", where)
    description = raw.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 128:
        raise invalid_request(
            f"Invalid {where}.description: a string of 1 to 128 characters",
            f"{where}.description",
        )
    quantity_text = str(raw.get("quantity", ""))
    try:
        quantity = Decimal(quantity_text)
    except InvalidOperation:
        quantity = Decimal(0)
    if not _QUANTITY.match(quantity_text) or quantity <= 0:
        raise invalid_request(
            f"Invalid {where}.quantity: a positive number with up to 3 decimals",
            f"{where}.quantity",
        )
    amount = _money(raw.get("amount"), f"{where}.amount", currency)
    vat_code = _int_in(raw.get("vat_code"), 1, 12)
    if vat_code is None:
        raise invalid_request(
            f"Invalid {where}.vat_code: 1..12 (11: VAT 22%, 12: VAT 22/122)", f"{where}.vat_code"
        )
    subject = raw.get("payment_subject")
    if subject not in PAYMENT_SUBJECTS:
        raise invalid_request(
            f"Invalid {where}.payment_subject: one of YooKassa's payment subjects, e.g. service",
            f"{where}.payment_subject",
        )
    mode = raw.get("payment_mode")
    if mode not in PAYMENT_MODES:
        raise invalid_request(
            f"Invalid {where}.payment_mode: one of {', '.join(sorted(PAYMENT_MODES))}",
            f"{where}.payment_mode",
        )
    return {
        "description": description,
        "quantity": str(quantity),
        "amount": {"value": f"{amount:.2f}", "currency": currency},
        "vat_code": vat_code,
        "payment_subject": subject,
        "payment_mode": mode,
    }


def parse_receipt(
    raw: Any,
    *,
    rules: ReceiptRules,
    amount: Decimal,
    currency: str,
    required: bool | None = None,
) -> dict[str, Any] | None:
    """The cleaned receipt of a payment/refund of ``amount``, or None when none was sent and none is
    needed (``required`` overrides ``rules.required``, e.g. a full refund needs none)."""
    needed = rules.required if required is None else required
    if raw is None:
        if needed:
            raise invalid_request(
                "Receipt is missing or illegal: this shop must send receipt data (54-FZ)",
                "receipt",
            )
        return None
    if not isinstance(raw, dict):
        raise invalid_request("Receipt is missing or illegal: an object expected", "receipt")
    customer = _customer(raw.get("customer"))
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not 1 <= len(items_raw) <= MAX_ITEMS:
        raise invalid_request(
            f"Invalid receipt.items: a list of 1 to {MAX_ITEMS} items", "receipt.items"
        )
    items = [_item(item, i, currency) for i, item in enumerate(items_raw)]
    total = sum(
        (Decimal(i["amount"]["value"]) * Decimal(i["quantity"]) for i in items), Decimal(0)
    ).quantize(Decimal("0.01"))
    if total != amount:
        raise invalid_request(
            f"Invalid receipt.items: their total {total:.2f} differs from the amount {amount:.2f}",
            "receipt.items",
        )
    receipt: dict[str, Any] = {"customer": customer, "items": items}
    if "tax_system_code" in raw:
        code = _int_in(raw["tax_system_code"], 1, 6)
        if code is None:
            raise invalid_request(
                "Invalid receipt.tax_system_code: 1..6", "receipt.tax_system_code"
            )
        receipt["tax_system_code"] = code
    elif rules.tax_system_required:
        raise invalid_request(
            "Parameter receipt.tax_system_code is required: the shop has several tax systems",
            "receipt.tax_system_code",
        )
    return receipt
