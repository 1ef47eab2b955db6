"""54-FZ receipts: the buyer's contact (e-mail or phone) and the receipt sent with each payment.

With ``BOTFLEET_YOOKASSA_RECEIPTS=true`` every payment we create carries a receipt: one line (the plan
and period bought, ``payment_subject``/``payment_mode`` and ``vat_code`` from the settings) for the
payment's whole amount, sent to the contact the buyer gave (an e-mail, or a phone number in ITU-T E.164
digits). The contact is kept per tenant (``control.receipt_contacts``): renewals and automatic charges
reuse it, and the owner changes it in "My bots". A partial refund carries its own receipt for the
refunded amount; a full refund needs none (YooKassa reuses the payment's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from fleet.billing.config import BillingConfig
from fleet.billing.yookassa import Receipt, ReceiptItem
from fleet.db import Executor
from fleet.errors import NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories import receipt_contacts as contact_repo
from fleet.repositories.tenants import Tenant, TenantRepository

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE_NOISE = re.compile(r"[\s()\-.]")


@dataclass(frozen=True)
class Contact:
    """Where a receipt goes: an e-mail or a phone (E.164 digits, ``79001234567``)."""

    email: str | None = None
    phone: str | None = None

    def __bool__(self) -> bool:
        return bool(self.email or self.phone)

    def as_dict(self) -> dict[str, str]:
        """``{"email": ...}`` or ``{"phone": ...}`` (what a payment row's metadata keeps)."""
        return {k: v for k, v in (("email", self.email), ("phone", self.phone)) if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Contact:
        data = data or {}
        return cls(email=data.get("email") or None, phone=data.get("phone") or None)

    def shown(self) -> str:
        """For the owner's own chat: the e-mail, or the phone as ``+79001234567``."""
        if self.email:
            return self.email
        return f"+{self.phone}" if self.phone else "-"

    def masked(self) -> str:
        """For owners' screens and logs: ``i***@example.com`` or ``+7 *** *** ** 67``."""
        if self.email:
            name, _, domain = self.email.partition("@")
            return f"{name[:1]}***@{domain}"
        if self.phone:
            return f"+{self.phone[:1]} *** *** ** {self.phone[-2:]}"
        return "-"


def parse_contact(text: str) -> Contact:
    """An e-mail or a phone number as people type them (``+7 (900) 123-45-67``, ``89001234567``);
    ValidationError(``contact``) saying what to send otherwise."""
    value = text.strip()
    if "@" in value:
        if len(value) > 254 or not _EMAIL.match(value):
            raise ValidationError("contact", "is not an e-mail address, e.g. name@example.com")
        return Contact(email=value)
    digits = _PHONE_NOISE.sub("", value)
    if digits.startswith("+"):
        digits = digits[1:]
    elif len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]  # the Russian trunk prefix: 8 900 ... is +7 900 ...
    if not digits.isdigit() or not 11 <= len(digits) <= 15 or digits.startswith("0"):
        raise ValidationError(
            "contact",
            "is neither an e-mail nor a phone number; send e.g. name@example.com or +79001234567",
        )
    return Contact(phone=digits)


def check_contact(email: str | None, phone: str | None) -> Contact:
    """A contact given as separate fields (the API, an order), checked like typed text."""
    contact = Contact()
    if email:
        contact = parse_contact(email)
        if contact.email is None:
            raise ValidationError("email", "is not an e-mail address, e.g. name@example.com")
    if phone:
        parsed = parse_contact(phone)
        if parsed.phone is None:
            raise ValidationError("phone", "is not a phone number, e.g. +79001234567")
        contact = Contact(email=contact.email, phone=parsed.phone)
    return contact


class ReceiptBook:
    """Builds receipts from the settings and keeps each tenant's contact."""

    def __init__(self, config: BillingConfig) -> None:
        self._config = config

    @property
    def required(self) -> bool:
        """Whether every payment carries a receipt (``BOTFLEET_YOOKASSA_RECEIPTS``)."""
        return self._config.receipts

    def build(
        self, *, description: str, amount: Decimal, currency: str, contact: Contact
    ) -> Receipt | None:
        """The receipt of one payment or refund of ``amount``, None when receipts are off."""
        if not self._config.receipts:
            return None
        return Receipt(
            items=(
                ReceiptItem(
                    description=description,
                    amount=amount,
                    currency=currency,
                    vat_code=self._config.vat_code,
                    payment_subject=self._config.payment_subject,
                    payment_mode=self._config.payment_mode,
                ),
            ),
            email=contact.email,
            phone=contact.phone,
            tax_system_code=self._config.tax_system_code,
        )

    @staticmethod
    async def contact_of(db: Executor, tenant_id: int) -> Contact:
        """The tenant's stored contact (empty if none was given)."""
        row = await contact_repo.get(db, tenant_id)
        return Contact() if row is None else Contact(email=row["email"], phone=row["phone"])

    @staticmethod
    async def remember(db: Executor, tenant_id: int, contact: Contact) -> None:
        """Keep ``contact`` for the tenant's later payments (a no-op for an empty one)."""
        if contact:
            await contact_repo.put(db, tenant_id, email=contact.email, phone=contact.phone)


class ReceiptContacts:
    """An owner's view of where their bots' receipts go ("My bots" -> receipt e-mail or phone)."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _owned(self, owner_telegram_id: int, tenant_id: int) -> Tenant:
        tenant = await TenantRepository(self._pool).get_by_id(tenant_id)
        if (
            tenant is None
            or tenant.deleted_at is not None
            or owner_telegram_id not in tenant.owner_telegram_ids
        ):
            raise NotFoundError("you have no such bot")
        return tenant

    async def current(self, *, owner_telegram_id: int, tenant_id: int) -> tuple[Tenant, Contact]:
        """The owner's bot and its receipt contact (empty if none was given)."""
        tenant = await self._owned(owner_telegram_id, tenant_id)
        return tenant, await ReceiptBook.contact_of(self._pool, tenant.id)

    async def change(self, *, owner_telegram_id: int, tenant_id: int, text: str) -> Contact:
        """Replace the contact by what the owner typed (ValidationError(``contact``) if it is
        neither an e-mail nor a phone number); recorded in the audit log (masked)."""
        contact = parse_contact(text)
        tenant = await self._owned(owner_telegram_id, tenant_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await ReceiptBook.remember(conn, tenant.id, contact)
            await audit.record(
                conn,
                actor=f"telegram:{owner_telegram_id}",
                action="receipt_contact.change",
                target=tenant.slug,
                details={"contact": contact.masked()},
            )
        return contact
