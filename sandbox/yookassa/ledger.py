"""The stand-in's state: payments, refunds, saved payment methods and Idempotence-Key replies."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sandbox.yookassa.errors import YooKassaError, invalid_request, not_found
from sandbox.yookassa.payments import Payment, card_method, payment_id
from sandbox.yookassa.receipts import ReceiptRules, parse_receipt
from sandbox.yookassa.refunds import Refund, RefundCreate, refund_id
from sandbox.yookassa.validation import PaymentCreate

logger = logging.getLogger(__name__)

IDEMPOTENCE_TTL = 24 * 3600.0


@dataclass
class _Remembered:
    fingerprint: str
    status: int
    body: dict[str, Any]
    expires: float


class IdempotenceKeys:
    """Replies remembered per ``Idempotence-Key`` for 24 hours, as YooKassa does.

    The same key with the same request gets the first reply again; the same key with a different
    request is refused.
    """

    def __init__(
        self, *, ttl: float = IDEMPOTENCE_TTL, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl = ttl
        self.clock = clock
        self._replies: dict[str, _Remembered] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: Any) -> str:
        """What makes two requests "the same" for a key."""
        return f"{method} {path} {json.dumps(body, sort_keys=True, separators=(',', ':'))}"

    def lookup(self, key: str, fingerprint: str) -> tuple[int, dict[str, Any]] | None:
        """The remembered reply for ``key``, ``None`` if new; raises on a reused key."""
        now = self.clock()
        remembered = self._replies.get(key)
        if remembered is None or remembered.expires <= now:
            self._replies.pop(key, None)
            return None
        if remembered.fingerprint != fingerprint:
            raise invalid_request("Idempotence key duplicated", "Idempotence-Key")
        return remembered.status, remembered.body

    def remember(self, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        """Store a successful reply under ``key``."""
        self._replies[key] = _Remembered(fingerprint, status, body, self.clock() + self.ttl)


class PaymentLedger:
    """Creates and moves payments and refunds; calls ``on_event(event, object)`` with the API object
    of every payment or refund whose status changed."""

    def __init__(
        self,
        *,
        shop_id: str,
        on_event: Callable[[str, dict[str, Any]], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        receipts: ReceiptRules | None = None,
    ) -> None:
        self.shop_id = shop_id
        self.on_event = on_event
        self.clock = clock
        self.receipts = receipts or ReceiptRules()
        self.checkout_url = "http://127.0.0.1/checkout"
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self.saved_methods: dict[str, dict[str, Any]] = {}
        # False: refunds succeed at once (bank cards); True: they stay pending until settled
        self.settle_refunds_later = False

    def create(self, request: PaymentCreate) -> Payment:
        """A new payment; one made with a saved ``payment_method_id`` is paid at once."""
        saved = None
        if request.payment_method_id is not None:
            saved = self.saved_methods.get(request.payment_method_id)
            if saved is None:
                raise invalid_request(
                    "Payment method with this payment_method_id is not found or not saved",
                    "payment_method_id",
                )
        new_id = payment_id()
        payment = Payment(
            id=new_id,
            request=request,
            shop_id=self.shop_id,
            created_at=self.clock(),
            confirmation_url=f"{self.checkout_url}/{new_id}" if saved is None else None,
        )
        if request.payment_method_type is not None:
            payment.payment_method = card_method(
                method_type=request.payment_method_type, saved=False
            )
            payment.payment_method["status"] = "inactive"
        self.payments[payment.id] = payment
        logger.info("payment created id=%s amount=%s", payment.id, payment.request.amount)
        if saved is not None:
            self._emit(payment.mark_paid(method=dict(saved), now=self.clock()), payment)
        return payment

    def get(self, payment_id_: str) -> Payment:
        """A payment by id (404 ``not_found`` when unknown)."""
        payment = self.payments.get(payment_id_)
        if payment is None:
            raise not_found()
        return payment

    def pay(self, payment_id_: str) -> Payment:
        """The payer confirmed on the checkout page."""
        payment = self.get(payment_id_)
        if payment.status != "pending":
            raise YooKassaError(400, f"Payment is already {payment.status}", code="invalid_request")
        method = card_method(
            method_type=payment.request.payment_method_type,
            saved=payment.request.save_payment_method,
        )
        if method["saved"]:
            self.saved_methods[method["id"]] = method
        self._emit(payment.mark_paid(method=method, now=self.clock()), payment)
        return payment

    def decline(self, payment_id_: str, *, reason: str = "expired_on_confirmation") -> Payment:
        """The payer gave up, or the bank declined: the payment is canceled by YooKassa."""
        payment = self.get(payment_id_)
        if payment.status not in ("pending", "waiting_for_capture"):
            raise YooKassaError(400, f"Payment is already {payment.status}", code="invalid_request")
        party = (
            "payment_network"
            if reason in ("general_decline", "insufficient_funds")
            else ("yoo_money")
        )
        payment.cancel(party=party, reason=reason)
        self._emit("payment.canceled", payment)
        return payment

    def capture(self, payment_id_: str, amount: tuple[Decimal, str] | None) -> Payment:
        """``POST /v3/payments/{id}/capture``."""
        payment = self.get(payment_id_)
        if payment.status == "succeeded":
            return payment
        if payment.status != "waiting_for_capture":
            raise invalid_request(
                f"Payment is in {payment.status} status; only waiting_for_capture can be captured"
            )
        value = None
        if amount is not None:
            value, currency = amount
            if currency != payment.request.currency or value > payment.request.amount:
                raise invalid_request("Invalid amount: more than authorized", "amount")
        payment.capture(amount=value, now=self.clock())
        self._emit("payment.succeeded", payment)
        return payment

    def cancel(self, payment_id_: str) -> Payment:
        """``POST /v3/payments/{id}/cancel``: merchants cancel only waiting_for_capture."""
        payment = self.get(payment_id_)
        if payment.status == "canceled":
            return payment
        if payment.status != "waiting_for_capture":
            raise invalid_request(
                f"Payment is in {payment.status} status; only waiting_for_capture can be canceled"
            )
        payment.cancel(party="merchant", reason="canceled_by_merchant")
        self._emit("payment.canceled", payment)
        return payment

    def create_refund(self, request: RefundCreate) -> Refund:
        """``POST /v3/refunds``: at most what is left of a succeeded payment; a partial refund
        of a shop that sends receipts must carry its own receipt."""
        payment = self.payments.get(request.payment_id)
        if payment is None:
            raise invalid_request(
                "Payment with this payment_id doesn't exist or access denied", "payment_id"
            )
        if payment.status != "succeeded":
            raise invalid_request(
                f"Payment is in {payment.status} status; only succeeded payments can be refunded",
                "payment_id",
            )
        if request.currency != payment.request.currency:
            raise invalid_request(
                "Invalid amount.currency: must be the payment's currency", "amount.currency"
            )
        left = payment.amount - payment.refunded_amount
        if request.amount > left:
            raise invalid_request(
                f"Refund amount {request.amount:.2f} exceeds what is left to refund ({left:.2f})",
                "amount.value",
            )
        expected = payment.request.receipt is not None or self.receipts.required
        partial = request.amount < payment.amount
        receipt = parse_receipt(
            request.receipt_raw,
            rules=self.receipts,
            amount=request.amount,
            currency=request.currency,
            required=self.receipts.required and partial,
        )
        if receipt is None and expected and not partial:
            receipt = payment.request.receipt  # a full refund reuses the payment's receipt
        refund = Refund(
            id=refund_id(),
            payment_id=payment.id,
            amount=request.amount,
            currency=request.currency,
            created_at=self.clock(),
            description=request.description,
            receipt=receipt,
            receipt_expected=expected,
        )
        payment.refunded_amount += request.amount
        self.refunds[refund.id] = refund
        logger.info("refund created id=%s payment=%s", refund.id, payment.id)
        if not self.settle_refunds_later:
            self.settle_refund(refund.id)
        return refund

    def get_refund(self, refund_id_: str) -> Refund:
        """A refund by id (404 ``not_found`` when unknown)."""
        refund = self.refunds.get(refund_id_)
        if refund is None:
            raise not_found("Refund doesn't exist or access denied")
        return refund

    def settle_refund(self, refund_id_: str) -> Refund:
        """The bank returned the money: the refund succeeds (``refund.succeeded`` is sent)."""
        refund = self.get_refund(refund_id_)
        if refund.status != "pending":
            raise YooKassaError(400, f"Refund is already {refund.status}", code="invalid_request")
        refund.status = "succeeded"
        logger.info("refund.succeeded id=%s", refund.id)
        self.on_event("refund.succeeded", refund.to_api())
        return refund

    def _emit(self, event: str, payment: Payment) -> None:
        payment.events.append(event)
        logger.info("payment %s id=%s", event, payment.id)
        self.on_event(event, payment.to_api())
