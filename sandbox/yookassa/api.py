"""YooKassa API v3 routes: create, fetch, list, capture and cancel payments; create, fetch and list
refunds.

Requests need HTTP Basic auth ``shop_id:secret_key``; POSTs need an ``Idempotence-Key`` header. Every
error is YooKassa's JSON error object with the matching HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from sandbox.yookassa.errors import YooKassaError, invalid_request, not_found
from sandbox.yookassa.faults import FaultPlan
from sandbox.yookassa.ledger import IdempotenceKeys, PaymentLedger
from sandbox.yookassa.receipts import parse_receipt
from sandbox.yookassa.refunds import parse_refund_create
from sandbox.yookassa.validation import PaymentCreate, parse_amount, parse_create

logger = logging.getLogger(__name__)

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_KEY_LENGTH = 64


@web.middleware
async def api_errors(request: web.Request, handler: RouteHandler) -> web.StreamResponse:
    """Render :class:`YooKassaError` as YooKassa's JSON error object."""
    try:
        return await handler(request)
    except YooKassaError as error:
        return web.json_response(error.to_payload(), status=error.status)


class PaymentsApi:
    """The ``/v3`` routes over a :class:`PaymentLedger`."""

    def __init__(
        self,
        ledger: PaymentLedger,
        *,
        shop_id: str,
        secret_key: str,
        faults: FaultPlan,
        idempotence: IdempotenceKeys | None = None,
    ) -> None:
        self.ledger = ledger
        self.shop_id = shop_id
        self.secret_key = secret_key
        self.faults = faults
        self.idempotence = idempotence or IdempotenceKeys()

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes under ``/v3``."""
        return [
            web.post("/v3/payments", self.create),
            web.get("/v3/payments", self.list),
            web.get("/v3/payments/{payment_id}", self.fetch),
            web.post("/v3/payments/{payment_id}/capture", self.capture),
            web.post("/v3/payments/{payment_id}/cancel", self.cancel),
            web.post("/v3/refunds", self.create_refund),
            web.get("/v3/refunds", self.list_refunds),
            web.get("/v3/refunds/{refund_id}", self.fetch_refund),
            web.route("*", "/v3/{tail:.*}", self.unknown),
        ]

    def authenticate(self, request: web.Request) -> None:
        """Check HTTP Basic credentials like YooKassa (401 ``invalid_credentials``)."""
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise YooKassaError(
                401,
                "Authorization header is missing or its scheme is not Basic",
                parameter="Authorization",
            )
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise YooKassaError(
                401, "Login has illegal format", parameter="Authorization"
            ) from None
        valid_login = secrets.compare_digest(login.encode(), self.shop_id.encode())
        valid_password = secrets.compare_digest(password.encode(), self.secret_key.encode())
        if not (valid_login and valid_password):
            raise YooKassaError(401, "Authentication by given credentials failed")

    @staticmethod
    async def json_body(request: web.Request) -> dict[str, Any]:
        """The request body as a JSON object (400 or 415 otherwise)."""
        raw = await request.read()
        if not raw.strip():
            return {}
        if request.content_type not in ("application/json", "application/octet-stream"):
            raise YooKassaError(415, f"Content-Type {request.content_type} is not supported")
        try:
            body = json.loads(raw)
        except ValueError:
            raise invalid_request("Request body is not a valid JSON") from None
        if not isinstance(body, dict):
            raise invalid_request("Request body must be a JSON object")
        return body

    async def _idempotent(
        self, request: web.Request, body: dict[str, Any], work: Callable[[], dict[str, Any]]
    ) -> web.Response:
        key = request.headers.get("Idempotence-Key", "")
        if not key:
            raise invalid_request("Idempotence key isn't specified", "Idempotence-Key")
        if len(key) > _MAX_KEY_LENGTH:
            raise invalid_request("Idempotence key is too long", "Idempotence-Key")
        fingerprint = self.idempotence.fingerprint(request.method, request.path, body)
        remembered = self.idempotence.lookup(key, fingerprint)
        if remembered is not None:
            status, payload = remembered
            return web.json_response(payload, status=status)
        payload = work()
        self.idempotence.remember(key, fingerprint, 200, payload)
        return web.json_response(payload)

    async def create(self, request: web.Request) -> web.Response:
        """``POST /v3/payments``."""
        self.authenticate(request)
        body = await self.json_body(request)
        await self.faults.apply("create")
        return await self._idempotent(
            request, body, lambda: self.ledger.create(self._parse_payment(body)).to_api()
        )

    def _parse_payment(self, body: dict[str, Any]) -> PaymentCreate:
        parsed = parse_create(body)
        receipt = parse_receipt(
            body.get("receipt"),
            rules=self.ledger.receipts,
            amount=parsed.amount,
            currency=parsed.currency,
        )
        return replace(parsed, receipt=receipt)

    async def create_refund(self, request: web.Request) -> web.Response:
        """``POST /v3/refunds``."""
        self.authenticate(request)
        body = await self.json_body(request)
        await self.faults.apply("refund")
        return await self._idempotent(
            request,
            body,
            lambda: self.ledger.create_refund(parse_refund_create(body)).to_api(),
        )

    async def fetch_refund(self, request: web.Request) -> web.Response:
        """``GET /v3/refunds/{id}``."""
        self.authenticate(request)
        await self.faults.apply("get_refund")
        return web.json_response(self.ledger.get_refund(request.match_info["refund_id"]).to_api())

    async def list_refunds(self, request: web.Request) -> web.Response:
        """``GET /v3/refunds`` (newest first; ``payment_id`` and ``status`` filters)."""
        self.authenticate(request)
        await self.faults.apply("get_refund")
        payment_id = request.query.get("payment_id")
        status = request.query.get("status")
        refunds = sorted(self.ledger.refunds.values(), key=lambda r: r.created_at, reverse=True)
        items = [
            r.to_api()
            for r in refunds
            if (payment_id is None or r.payment_id == payment_id)
            and (status is None or r.status == status)
        ]
        return web.json_response({"type": "list", "items": items})

    async def fetch(self, request: web.Request) -> web.Response:
        """``GET /v3/payments/{id}``."""
        self.authenticate(request)
        await self.faults.apply("get")
        return web.json_response(self.ledger.get(request.match_info["payment_id"]).to_api())

    async def list(self, request: web.Request) -> web.Response:
        """``GET /v3/payments`` (newest first; ``status`` and ``limit`` filters)."""
        self.authenticate(request)
        await self.faults.apply("list")
        status = request.query.get("status")
        try:
            limit = max(1, min(100, int(request.query.get("limit", "10"))))
        except ValueError:
            raise invalid_request("Invalid limit: 1..100", "limit") from None
        payments = sorted(self.ledger.payments.values(), key=lambda p: p.created_at, reverse=True)
        items = [p.to_api() for p in payments if status is None or p.status == status][:limit]
        return web.json_response({"type": "list", "items": items})

    async def capture(self, request: web.Request) -> web.Response:
        """``POST /v3/payments/{id}/capture``."""
        self.authenticate(request)
        body = await self.json_body(request)
        await self.faults.apply("capture")
        payment_id = request.match_info["payment_id"]
        amount = parse_amount(body["amount"]) if "amount" in body else None
        return await self._idempotent(
            request, body, lambda: self.ledger.capture(payment_id, amount).to_api()
        )

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST /v3/payments/{id}/cancel``."""
        self.authenticate(request)
        body = await self.json_body(request)
        await self.faults.apply("cancel")
        payment_id = request.match_info["payment_id"]
        return await self._idempotent(
            request, body, lambda: self.ledger.cancel(payment_id).to_api()
        )

    async def unknown(self, request: web.Request) -> web.Response:
        """Anything else under ``/v3``."""
        self.authenticate(request)
        raise not_found(f"Unknown API method {request.method} {request.path}")
