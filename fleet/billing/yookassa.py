"""An async client of the YooKassa API v3 (payments and refunds), on httpx.

The official SDK is synchronous; calling it on the event loop would stall every other request, so the
few calls billing needs are made here with httpx. Every create carries OUR idempotence key (stored in
``control.payments`` before the call), and retries after a timeout, a network error, 5xx, 429 or 202
reuse that same key: YooKassa then returns the payment it already created instead of a second one.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from fleet.billing.errors import ProviderRejected, ProviderUnavailable

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
_PAYMENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _Transient(Exception):
    """An answer worth retrying with the same idempotence key."""


def money(amount: Decimal) -> str:
    """YooKassa's amount string: exactly two decimals, never a float."""
    return str(amount.quantize(CENT))


def valid_payment_id(value: Any) -> bool:
    """Whether ``value`` can be a YooKassa payment id (it goes into a URL path)."""
    return isinstance(value, str) and bool(_PAYMENT_ID_RE.fullmatch(value))


@dataclass(frozen=True)
class ReceiptItem:
    """One line of a 54-FZ receipt."""

    description: str
    amount: Decimal
    currency: str
    vat_code: int
    quantity: Decimal = Decimal("1")
    payment_subject: str = "service"
    payment_mode: str = "full_payment"

    def to_api(self) -> dict[str, Any]:
        return {
            "description": self.description[:128],
            "quantity": str(self.quantity.quantize(CENT)),
            "amount": {"value": money(self.amount), "currency": self.currency},
            "vat_code": self.vat_code,
            "payment_subject": self.payment_subject,
            "payment_mode": self.payment_mode,
        }


@dataclass(frozen=True)
class Receipt:
    """Receipt data for Russian fiscalisation (54-FZ): who gets the receipt and what was sold."""

    items: tuple[ReceiptItem, ...]
    email: str | None = None
    phone: str | None = None
    tax_system_code: int | None = None

    def to_api(self) -> dict[str, Any]:
        customer = {k: v for k, v in (("email", self.email), ("phone", self.phone)) if v}
        data: dict[str, Any] = {
            "customer": customer,
            "items": [item.to_api() for item in self.items],
        }
        if self.tax_system_code is not None:
            data["tax_system_code"] = self.tax_system_code
        return data


@dataclass(frozen=True)
class PaymentMethod:
    """How a payment was paid; ``saved`` methods can be charged again (auto-renewal)."""

    id: str
    type: str
    saved: bool
    title: str | None


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the YooKassa API reports it (the only account of a payment we trust)."""

    id: str
    status: str
    paid: bool
    amount: Decimal
    currency: str
    metadata: dict[str, str]
    confirmation_url: str | None = None
    payment_method: PaymentMethod | None = None
    cancellation_party: str | None = None
    cancellation_reason: str | None = None
    test: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ProviderPayment:
        """Parse an API payment object; raise ProviderUnavailable if it is not one."""
        try:
            amount = data["amount"]
            method = data.get("payment_method") or None
            cancellation = data.get("cancellation_details") or {}
            confirmation = data.get("confirmation") or {}
            return cls(
                id=str(data["id"]),
                status=str(data["status"]),
                paid=bool(data.get("paid", False)),
                amount=Decimal(str(amount["value"])),
                currency=str(amount["currency"]),
                metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
                confirmation_url=confirmation.get("confirmation_url"),
                payment_method=PaymentMethod(
                    id=str(method["id"]),
                    type=str(method.get("type", "")),
                    saved=bool(method.get("saved", False)),
                    title=method.get("title"),
                )
                if method and method.get("id")
                else None,
                cancellation_party=cancellation.get("party"),
                cancellation_reason=cancellation.get("reason"),
                test=bool(data.get("test", False)),
                raw=data,
            )
        except (KeyError, TypeError, AttributeError, InvalidOperation) as exc:
            raise ProviderUnavailable(
                f"YooKassa answered with something that is not a payment ({exc!r})"
            ) from exc


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the YooKassa API reports it."""

    id: str
    payment_id: str
    status: str
    amount: Decimal
    currency: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ProviderRefund:
        """Parse an API refund object; raise ProviderUnavailable if it is not one."""
        try:
            return cls(
                id=str(data["id"]),
                payment_id=str(data["payment_id"]),
                status=str(data["status"]),
                amount=Decimal(str(data["amount"]["value"])),
                currency=str(data["amount"]["currency"]),
            )
        except (KeyError, TypeError, AttributeError, InvalidOperation) as exc:
            raise ProviderUnavailable(
                f"YooKassa answered with something that is not a refund ({exc!r})"
            ) from exc


class YooKassaClient:
    """Creates and reads payments and refunds. Keyword-only construction; ``transport`` lets tests swap HTTP.

    ``retry_wait`` is a tenacity wait strategy (exponential with jitter by default; tests pass
    ``wait_none()`` so they never sleep).
    """

    def __init__(
        self,
        *,
        shop_id: str,
        secret_key: str,
        api_url: str = "https://api.yookassa.ru/v3",
        timeout: float = 10.0,
        max_attempts: int = 4,
        retry_wait: wait_base | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/",
            auth=httpx.BasicAuth(shop_id, secret_key),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._max_attempts = max_attempts
        self._wait = retry_wait or wait_exponential_jitter(multiplier=0.5, max=8.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> YooKassaClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def create_payment(
        self,
        *,
        idempotence_key: uuid.UUID | str,
        amount: Decimal,
        currency: str,
        description: str,
        metadata: dict[str, str],
        return_url: str | None = None,
        save_payment_method: bool = False,
        payment_method_id: str | None = None,
        receipt: Receipt | None = None,
    ) -> ProviderPayment:
        """Create a captured-at-once payment: a redirect to ``return_url`` for a buyer, or a
        charge of a saved ``payment_method_id`` (no confirmation) for auto-renewal."""
        body: dict[str, Any] = {
            "amount": {"value": money(amount), "currency": currency},
            "capture": True,
            "description": description[:128],
            "metadata": metadata,
        }
        if payment_method_id is not None:
            body["payment_method_id"] = payment_method_id
        else:
            if not return_url:
                raise ValueError("a redirect payment needs a return_url")
            body["confirmation"] = {"type": "redirect", "return_url": return_url}
            if save_payment_method:
                body["save_payment_method"] = True
        if receipt is not None:
            body["receipt"] = receipt.to_api()
        data = await self._call(
            "POST", "payments", json=body, headers={"Idempotence-Key": str(idempotence_key)}
        )
        return ProviderPayment.from_api(data)

    async def create_refund(
        self,
        *,
        idempotence_key: uuid.UUID | str,
        payment_id: str,
        amount: Decimal,
        currency: str,
        description: str | None = None,
        receipt: dict[str, Any] | None = None,
    ) -> ProviderRefund:
        """Refund ``amount`` of a succeeded payment (retried with the same key, like payments).
        ``receipt`` is the API form (:meth:`Receipt.to_api`) stored with our refund row, so a resend
        sends the very same body."""
        body: dict[str, Any] = {
            "payment_id": payment_id,
            "amount": {"value": money(amount), "currency": currency},
        }
        if description:
            body["description"] = description[:250]
        if receipt is not None:
            body["receipt"] = receipt
        data = await self._call(
            "POST", "refunds", json=body, headers={"Idempotence-Key": str(idempotence_key)}
        )
        return ProviderRefund.from_api(data)

    async def get_refund(self, refund_id: str) -> ProviderRefund:
        """The refund as YooKassa has it now; ProviderRejected (404) for an unknown id."""
        if not valid_payment_id(refund_id):
            raise ProviderRejected(
                404, code="not_found", description="not a YooKassa refund id", parameter="id"
            )
        return ProviderRefund.from_api(await self._call("GET", f"refunds/{refund_id}"))

    async def get_payment(self, payment_id: str) -> ProviderPayment:
        """The payment as YooKassa has it now; ProviderRejected (404) for an unknown id."""
        if not valid_payment_id(payment_id):
            raise ProviderRejected(
                404, code="not_found", description="not a YooKassa payment id", parameter="id"
            )
        return ProviderPayment.from_api(await self._call("GET", f"payments/{payment_id}"))

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, **kwargs)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise ProviderUnavailable(
                f"YooKassa {method} /{path} failed {self._max_attempts} times: {cause}"
            ) from cause
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("yookassa timeout", extra={"method": method, "path": path})
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            log.warning("yookassa transport error", extra={"method": method, "path": path})
            raise _Transient(f"network error ({type(exc).__name__})") from exc
        status = response.status_code
        # 202: YooKassa is still processing this idempotence key; ask again with the same key.
        if status == 202 or status == 429 or status >= 500:
            log.warning("yookassa retryable answer", extra={"status": status, "path": path})
            raise _Transient(f"HTTP {status}")
        try:
            data = response.json()
        except ValueError as exc:
            raise _Transient(f"HTTP {status} with a body that is not JSON") from exc
        if status >= 400:
            raise ProviderRejected(
                status,
                code=str(data.get("code", "error")),
                description=str(data.get("description", "")),
                parameter=data.get("parameter"),
            )
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"YooKassa answered HTTP {status} with a non-object")
        return data
