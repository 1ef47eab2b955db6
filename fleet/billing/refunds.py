"""Refunds: an operator gives money back (``botfleet payments refund``, ``POST
/api/v1/payments/{id}/refunds``); YooKassa confirms (its answer, or ``refund.succeeded``).

Invariants:

- **Never more than was paid.** A refund row is inserted under the payment's row lock, after summing
  every refund of that payment that is not canceled; so however many refunds race (with different
  keys), their total never exceeds the payment. A refund YooKassa refuses is canceled and its amount is
  free again.
- **A retry makes no second refund.** The caller names the refund with a key (``request_key``: the
  CLI's ``--key``, the API's ``Idempotency-Key``); the same key for the same payment finds the same
  row, which is resent to YooKassa with OUR idempotence key (stored before the call), so YooKassa
  returns the refund it already made. The same key with another amount is refused.
- **Trust only the API.** A ``refund.succeeded`` notification is only "look at refund X": the refund
  is fetched from YooKassa and matched to our row (its payment and amount). Applying it sets
  ``applied_at`` once under the refund's row lock, so replays change nothing.

The rule for the subscription (README, "Refunds"): a **partial** refund leaves the subscription as it
is. A **full** refund (the payment's whole amount returned) takes back the period that payment paid
for: the paid-until date moves back by the plan's period; if that date has passed, the subscription
ends now, the bot is suspended (desired state stopped, a suspend job) and its data is kept for the
retention period, as for non-payment; auto-renewal is switched off. A refund of a plan upgrade's
surcharge changes neither plan nor period. Every refund is in the audit log and the owner is told
through the sales bot (``payment.refunded``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import asyncpg

from fleet import jobs
from fleet.billing.config import BillingConfig, Clock, utc_now
from fleet.billing.errors import ProviderRejected, ProviderUnavailable
from fleet.billing.notifications import Notification
from fleet.billing.payments import PaymentOutcome, Result
from fleet.billing.receipts import Contact, ReceiptBook
from fleet.billing.yookassa import CENT, ProviderRefund, Receipt, YooKassaClient, money
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories import events as event_repo
from fleet.repositories import payment_writes as payment_repo
from fleet.repositories import refunds as refund_repo
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import TenantRepository
from schemas.events import PaymentRefunded

log = logging.getLogger(__name__)

ACTOR = "yookassa"
MAX_KEY_LENGTH = 128
# Payments that bought a period (a plan upgrade's surcharge did not: refunding it changes no period).
PERIOD_PURPOSES = frozenset({"purchase", "renewal", "auto_renewal"})


@dataclass(frozen=True)
class RefundView:
    """A refund as operators see it (CLI, API)."""

    id: uuid.UUID
    payment_id: uuid.UUID
    amount: Decimal
    currency: str
    status: str
    reason: str
    request_key: str
    provider_refund_id: str | None
    effect: str | None
    last_error: str | None
    created_at: datetime
    replayed: bool = False

    @classmethod
    def from_row(cls, row: asyncpg.Record, *, replayed: bool = False) -> RefundView:
        return cls(
            id=row["id"],
            payment_id=row["payment_id"],
            amount=row["amount"],
            currency=row["currency"].strip(),
            status=row["status"],
            reason=row["reason"],
            request_key=row["request_key"],
            provider_refund_id=row["provider_refund_id"],
            effect=row["effect"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            replayed=replayed,
        )


def parse_refund_amount(raw: str | Decimal | None) -> Decimal | None:
    """``"150"``/``"150.50"`` -> Decimal; None means the whole refundable rest."""
    if raw is None:
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError("amount", "is not a number, e.g. 150 or 150.50") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(CENT):
        raise ValidationError("amount", "must be positive with at most 2 decimals, e.g. 150.50")
    return value


class RefundService:
    """Makes refunds and applies YooKassa's word on them; see the module docstring."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        provider: YooKassaClient,
        config: BillingConfig,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._provider = provider
        self._config = config
        self._receipts = ReceiptBook(config)
        self._clock = clock

    async def refund(
        self,
        payment_id: uuid.UUID,
        *,
        key: str,
        actor: str,
        amount: Decimal | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> RefundView:
        """Refund ``amount`` (default: everything not yet refunded) of one of our payments.

        Raises NotFoundError (no such payment), ConflictError (not refundable, nothing left, the
        key used for another amount), ValidationError (more than is left), ProviderRejected (YooKassa
        refused: nothing refunded) or ProviderUnavailable (try again with the same key)."""
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise ValidationError(
                "key", f"give an idempotence key of 1-{MAX_KEY_LENGTH} characters"
            )
        if len(reason) > 250:
            raise ValidationError("reason", "at most 250 characters")
        async with self._pool.acquire() as conn, conn.transaction():
            payment = await payment_repo.lock_payment(conn, payment_id)
            if payment is None:
                raise NotFoundError(f"payment {payment_id} does not exist")
            existing = await refund_repo.find_by_key(conn, payment_id, key)
            if existing is not None:
                if amount is not None and amount != existing["amount"]:
                    raise ConflictError(
                        "key",
                        f"this key already made a refund of {money(existing['amount'])} "
                        f"{existing['currency'].strip()} of this payment; use a new key for "
                        "another refund",
                    )
                row, replayed = existing, True
            else:
                row, replayed = await self._open(conn, payment, key, amount, reason, actor), False
                await audit.record(
                    conn,
                    actor=actor,
                    action="refund.requested",
                    target=str(payment_id),
                    details={
                        "refund_id": str(row["id"]),
                        "amount": money(row["amount"]),
                        "reason": reason,
                    },
                    request_id=request_id,
                )
        if row["status"] != "new":
            return RefundView.from_row(row, replayed=replayed)
        return await self._submit(row, payment, replayed=replayed, request_id=request_id)

    async def _open(
        self,
        conn: asyncpg.Connection,
        payment: asyncpg.Record,
        key: str,
        amount: Decimal | None,
        reason: str,
        actor: str,
    ) -> asyncpg.Record:
        if payment["status"] != "succeeded" or payment["provider_payment_id"] is None:
            raise ConflictError(
                "payment", f"the payment is {payment['status']}: only a succeeded one is refundable"
            )
        reserved = await refund_repo.reserved_amount(conn, payment["id"])
        left = payment["amount"] - reserved
        currency = payment["currency"].strip()
        if left <= 0:
            raise ConflictError("payment", "the payment is already refunded in full")
        if amount is None:
            amount = left
        if amount > left:
            raise ValidationError(
                "amount",
                f"{money(amount)} {currency} is more than is left to refund: {money(left)} "
                f"{currency} (paid {money(payment['amount'])}, refunded or being refunded "
                f"{money(reserved)})",
            )
        contact = Contact.from_dict((payment["metadata"] or {}).get("receipt"))
        if not contact and payment["tenant_id"] is not None:
            contact = await ReceiptBook.contact_of(conn, payment["tenant_id"])
        receipt = self._refund_receipt(payment, amount, contact)
        return await refund_repo.insert_refund(
            conn,
            payment_id=payment["id"],
            amount=amount,
            currency=currency,
            request_key=key,
            reason=reason,
            requested_by=actor,
            receipt=receipt.to_api() if receipt is not None else None,
        )

    def _refund_receipt(
        self, payment: asyncpg.Record, amount: Decimal, contact: Contact
    ) -> Receipt | None:
        """A partial refund's own receipt, to the payment's buyer (a full refund reuses the
        payment's receipt, as YooKassa does)."""
        if amount == payment["amount"]:
            return None
        return self._receipts.build(
            description=payment["description"] or "botfleet",
            amount=amount,
            currency=payment["currency"].strip(),
            contact=contact,
        )

    async def _submit(
        self,
        row: asyncpg.Record,
        payment: asyncpg.Record,
        *,
        replayed: bool,
        request_id: str | None,
    ) -> RefundView:
        receipt = row["receipt"]
        try:
            remote = await self._provider.create_refund(
                idempotence_key=row["idempotence_key"],
                payment_id=payment["provider_payment_id"],
                amount=row["amount"],
                currency=row["currency"].strip(),
                description=row["reason"] or None,
                receipt=receipt,
            )
        except ProviderRejected as exc:
            await refund_repo.mark_canceled(self._pool, row["id"], error=str(exc))
            await audit.record(
                self._pool,
                actor=ACTOR,
                action="refund.rejected",
                target=str(payment["id"]),
                details={"refund_id": str(row["id"]), "code": exc.code, "parameter": exc.parameter},
                request_id=request_id,
            )
            log.error(
                "yookassa refused a refund",
                extra={"refund_id": str(row["id"]), "code": exc.code, "parameter": exc.parameter},
            )
            raise
        except ProviderUnavailable as exc:
            await refund_repo.store_error(self._pool, row["id"], error=str(exc))
            log.warning("yookassa unavailable for a refund", extra={"refund_id": str(row["id"])})
            raise
        await refund_repo.store_provider_result(
            self._pool,
            row["id"],
            provider_refund_id=remote.id,
            status="pending" if remote.status == "pending" else "new",
        )
        if remote.status == "succeeded":
            await self.apply(remote, request_id=request_id)
        elif remote.status == "canceled":
            await refund_repo.mark_canceled(self._pool, row["id"], error="canceled by YooKassa")
        fresh = await refund_repo.get(self._pool, row["id"])
        assert fresh is not None
        return RefundView.from_row(fresh, replayed=replayed)

    async def process_notification(
        self, notification: Notification, *, request_id: str | None = None
    ) -> Result:
        """``refund.succeeded``: fetch the refund from the API and apply it (idempotent).

        ``ProviderUnavailable`` propagates: the webhook answers 5xx and YooKassa retries."""
        known = await refund_repo.find_by_provider_id(self._pool, notification.object_id)
        if known is not None and known["applied_at"] is not None:
            return Result(PaymentOutcome.DUPLICATE, "refund already applied", known["payment_id"])
        try:
            remote = await self._provider.get_refund(notification.object_id)
        except ProviderRejected as exc:
            if exc.status == 404:
                log.warning("notification for an unknown refund")
                return Result(PaymentOutcome.IGNORED, "YooKassa does not know this refund")
            raise
        return await self.apply(remote, request_id=request_id)

    async def apply(self, remote: ProviderRefund, *, request_id: str | None = None) -> Result:
        """Apply a refund as the YooKassa API reported it: once, in one transaction."""
        if remote.status != "succeeded":
            return Result(PaymentOutcome.IGNORED, f"the refund is {remote.status}")
        payment_row = await payment_repo.find_by_provider_id(self._pool, remote.payment_id)
        if payment_row is None:
            log.warning("refund of a payment that is not ours")
            return Result(PaymentOutcome.IGNORED, "the refunded payment is not ours")
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            payment = await payment_repo.lock_payment(conn, payment_row["id"])
            assert payment is not None
            row = await refund_repo.lock_by_provider_id(conn, remote.id)
            if row is None:
                unanswered = await refund_repo.lock_unanswered(conn, payment["id"], remote.amount)
                if len(unanswered) > 1:
                    # Two of ours could be this one: wait for their create answers (YooKassa
                    # retries the notification), never guess.
                    raise ProviderUnavailable(
                        "refund notification before our create answers of two same-amount refunds"
                    )
                row = unanswered[0] if unanswered else None
            if row is None:
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="refund.unknown",
                    target=str(payment["id"]),
                    details={"provider_refund_id": remote.id, "amount": money(remote.amount)},
                    request_id=request_id,
                )
                log.error("a refund we did not make", extra={"payment_id": str(payment["id"])})
                return Result(PaymentOutcome.IGNORED, "no refund of ours matches", payment["id"])
            if row["payment_id"] != payment["id"] or row["amount"] != remote.amount:
                reason = "the refund's payment or amount differs from ours"
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="refund.mismatch",
                    target=str(row["id"]),
                    details={"reason": reason, "provider_refund_id": remote.id},
                    request_id=request_id,
                )
                return Result(PaymentOutcome.IGNORED, reason, payment["id"])
            if row["applied_at"] is not None:
                return Result(PaymentOutcome.DUPLICATE, "refund already applied", payment["id"])
            refunded = await refund_repo.refunded_amount(conn, payment["id"]) + row["amount"]
            effect, event = await self._effect(conn, payment, row, refunded=refunded, now=now)
            await refund_repo.mark_applied(
                conn, row["id"], provider_refund_id=remote.id, effect=effect, now=now
            )
            if payment["tenant_id"] is not None:
                await event_repo.insert_event(conn, tenant_id=payment["tenant_id"], event=event)
            await audit.record(
                conn,
                actor=ACTOR,
                action="payment.refunded",
                target=str(payment["id"]),
                details={
                    "refund_id": str(row["id"]),
                    "amount": money(row["amount"]),
                    "refunded_total": money(refunded),
                    "effect": effect,
                    "reason": row["reason"],
                    "requested_by": row["requested_by"],
                },
                request_id=request_id,
            )
        log.info(
            "refund applied",
            extra={"refund_id": str(row["id"]), "payment_id": str(payment["id"]), "effect": effect},
        )
        return Result(PaymentOutcome.APPLIED, effect, payment["id"])

    async def _effect(
        self,
        conn: asyncpg.Connection,
        payment: asyncpg.Record,
        refund: asyncpg.Record,
        *,
        refunded: Decimal,
        now: datetime,
    ) -> tuple[str, PaymentRefunded]:
        """What the refund does to the subscription (the rule in the module docstring)."""
        effect = "none"
        paid_until = delete_at = None
        full = refunded >= payment["amount"]
        tenant = (
            await TenantRepository(conn).lock(payment["tenant_id"])
            if payment["tenant_id"]
            else None
        )
        subscription = (
            await subscription_repo.lock_for_tenant(conn, tenant.id) if tenant is not None else None
        )
        if (
            full
            and payment["purpose"] in PERIOD_PURPOSES
            and payment["applied_at"] is not None
            and tenant is not None
            and subscription
        ):
            plan = await PlanRepository(conn).get(payment["plan_code"])
            period = timedelta(days=plan["period_days"] if plan is not None else 0)
            new_end = subscription["current_period_end"] - period
            if new_end > now and subscription["status"] == "active":
                updated = await refund_repo.take_back_period(
                    conn, subscription["id"], period_end=new_end
                )
                effect, paid_until = "period_taken_back", updated["current_period_end"]
            elif subscription["status"] in ("active", "grace"):
                await refund_repo.end_subscription(conn, subscription["id"], now=now)
                effect, delete_at = "subscription_ended", now + self._config.retention
                if tenant.desired_state not in ("stopped", "deleted"):
                    await TenantRepository(conn).update(tenant.id, desired_state="stopped")
                    await jobs.enqueue(conn, kind="suspend", tenant_id=tenant.id)
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="tenant.suspend",
                    target=tenant.slug,
                    details={"reason": "refunded", "payment_id": str(payment["id"])},
                )
        elif subscription is not None:
            paid_until = subscription["current_period_end"]
        event = PaymentRefunded(
            payment_id=str(payment["id"]),
            amount=money(refund["amount"]),
            currency=refund["currency"].strip(),
            refunded_total=money(refunded),
            paid=money(payment["amount"]),
            effect=effect,
            paid_until=paid_until,
            delete_at=delete_at,
        )
        return effect, event

    async def list_for_payment(self, payment_id: uuid.UUID) -> list[RefundView]:
        """A payment's refunds, oldest first."""
        return await list_refunds_of(self._pool, payment_id)


async def list_refunds_of(db: asyncpg.Pool, payment_id: uuid.UUID) -> list[RefundView]:
    """A payment's refunds, oldest first (reading needs no YooKassa)."""
    return [RefundView.from_row(r) for r in await refund_repo.list_for_payment(db, payment_id)]
