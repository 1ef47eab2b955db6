"""The stand-in's control API (``/sandbox/...``): pay or cancel as the payer, settle refunds, see the
receipts sent, switch the shop's receipt rules, steer delivery.

Errors are ``{"error": "<what to fix>"}`` with a 4xx status. See ``sandbox/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.yookassa.errors import ControlError, YooKassaError
from sandbox.yookassa.faults import OPERATIONS, Fault, FaultPlan
from sandbox.yookassa.ledger import PaymentLedger
from sandbox.yookassa.notifier import NotificationSender
from sandbox.yookassa.payments import Payment
from sandbox.yookassa.receipts import ReceiptRules

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def control_errors(request: web.Request, handler: RouteHandler) -> web.StreamResponse:
    """Turn :class:`ControlError` into ``{"error": ...}`` responses."""
    try:
        return await handler(request)
    except ControlError as error:
        return web.json_response({"error": error.message}, status=error.status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


class ControlApi:
    """Routes under ``/sandbox`` for tests and demos."""

    def __init__(
        self, ledger: PaymentLedger, *, notifier: NotificationSender, faults: FaultPlan
    ) -> None:
        self.ledger = ledger
        self.notifier = notifier
        self.faults = faults

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes of the control API."""
        return [
            web.get("/sandbox/health", self.health),
            web.get("/sandbox/payments", self.list_payments),
            web.get("/sandbox/payments/{payment_id}", self.get_payment),
            web.post("/sandbox/payments/{payment_id}/succeed", self.succeed),
            web.post("/sandbox/payments/{payment_id}/cancel", self.cancel),
            web.get("/sandbox/refunds", self.list_refunds),
            web.post("/sandbox/refunds/{refund_id}/succeed", self.settle_refund),
            web.put("/sandbox/refunds/settle", self.set_refund_settling),
            web.get("/sandbox/receipts", self.receipts),
            web.put("/sandbox/receipts", self.set_receipt_rules),
            web.get("/sandbox/webhook", self.get_webhook),
            web.put("/sandbox/webhook", self.set_webhook),
            web.get("/sandbox/notifications", self.notifications),
            web.get("/sandbox/faults", self.list_faults),
            web.post("/sandbox/faults", self.add_fault),
            web.delete("/sandbox/faults", self.clear_faults),
        ]

    @staticmethod
    def _view(payment: Payment) -> dict[str, Any]:
        """The API object plus what the merchant's dashboard shows: the receipt sent with it."""
        return {**payment.to_api(), "receipt": payment.request.receipt}

    def _payment(self, payment_id: str) -> dict[str, Any]:
        try:
            return self._view(self.ledger.get(payment_id))
        except YooKassaError:
            raise ControlError(404, f"payment {payment_id} does not exist") from None

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def list_payments(self, request: web.Request) -> web.Response:
        payments = [self._view(p) for p in self.ledger.payments.values()]
        return web.json_response({"payments": payments})

    async def get_payment(self, request: web.Request) -> web.Response:
        return web.json_response(self._payment(request.match_info["payment_id"]))

    async def succeed(self, request: web.Request) -> web.Response:
        """The payer pays (same as the Pay button)."""
        payment_id = request.match_info["payment_id"]
        self._payment(payment_id)
        try:
            payment = self.ledger.pay(payment_id)
        except YooKassaError as error:
            raise ControlError(409, error.description) from None
        return web.json_response(self._view(payment))

    async def cancel(self, request: web.Request) -> web.Response:
        """The payer abandons or the bank declines; ``{"reason": ...}`` is optional."""
        payment_id = request.match_info["payment_id"]
        self._payment(payment_id)
        body = await _body(request)
        reason = str(body.get("reason") or "expired_on_confirmation")
        try:
            payment = self.ledger.decline(payment_id, reason=reason)
        except YooKassaError as error:
            raise ControlError(409, error.description) from None
        return web.json_response(payment.to_api())

    async def list_refunds(self, request: web.Request) -> web.Response:
        """Every refund with its receipt, oldest first."""
        items = [{**r.to_api(), "receipt": r.receipt} for r in self.ledger.refunds.values()]
        return web.json_response({"refunds": items})

    async def settle_refund(self, request: web.Request) -> web.Response:
        """The bank returned the money of a pending refund."""
        refund_id = request.match_info["refund_id"]
        try:
            refund = self.ledger.settle_refund(refund_id)
        except YooKassaError as error:
            status = 404 if error.status == 404 else 409
            raise ControlError(status, error.description) from None
        return web.json_response(refund.to_api())

    async def set_refund_settling(self, request: web.Request) -> web.Response:
        """``{"later": true}``: new refunds stay pending until settled; false: they succeed at once."""
        body = await _body(request)
        later = body.get("later")
        if not isinstance(later, bool):
            raise ControlError(400, "later must be true or false")
        self.ledger.settle_refunds_later = later
        return web.json_response({"later": later})

    def _rules_json(self) -> dict[str, Any]:
        rules = self.ledger.receipts
        return {"required": rules.required, "tax_system_required": rules.tax_system_required}

    async def receipts(self, request: web.Request) -> web.Response:
        """The shop's receipt rules and every receipt sent (payments and refunds), oldest first."""
        sent: list[dict[str, Any]] = [
            {
                "type": "payment",
                "payment_id": p.id,
                "status": p.status,
                "receipt": p.request.receipt,
            }
            for p in self.ledger.payments.values()
            if p.request.receipt is not None
        ]
        sent += [
            {
                "type": "refund",
                "payment_id": r.payment_id,
                "refund_id": r.id,
                "status": r.status,
                "receipt": r.receipt,
            }
            for r in self.ledger.refunds.values()
            if r.receipt is not None
        ]
        return web.json_response({"rules": self._rules_json(), "receipts": sent})

    async def set_receipt_rules(self, request: web.Request) -> web.Response:
        """``{"required": bool, "tax_system_required": bool}``: the shop's 54-FZ settings."""
        body = await _body(request)
        current = self.ledger.receipts
        values = {
            "required": body.get("required", current.required),
            "tax_system_required": body.get("tax_system_required", current.tax_system_required),
        }
        if not all(isinstance(v, bool) for v in values.values()):
            raise ControlError(400, "required and tax_system_required must be true or false")
        self.ledger.receipts = ReceiptRules(**values)
        return web.json_response(self._rules_json())

    def _webhook_json(self) -> dict[str, Any]:
        config = self.notifier.config
        return {"url": config.webhook_url, "source_address": config.source_address}

    async def get_webhook(self, request: web.Request) -> web.Response:
        return web.json_response(self._webhook_json())

    async def set_webhook(self, request: web.Request) -> web.Response:
        """Set ``url`` (``null`` to stop sending) and optionally ``source_address``."""
        body = await _body(request)
        if "url" in body:
            url = body["url"]
            if url is not None and not (
                isinstance(url, str) and url.startswith(("http://", "https://"))
            ):
                raise ControlError(400, "url must be an http(s) URL or null")
            self.notifier.config.webhook_url = url
        if "source_address" in body:
            self.notifier.config.source_address = body["source_address"] or None
        return web.json_response(self._webhook_json())

    async def notifications(self, request: web.Request) -> web.Response:
        """The delivery log, oldest first."""
        items = [d.to_json() for d in self.notifier.deliveries]
        return web.json_response({"notifications": items})

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in self.faults.faults]})

    async def add_fault(self, request: web.Request) -> web.Response:
        """Queue ``{"operation", "status", "count", "delay"}``; ``status: null`` with a delay hangs."""
        body = await _body(request)
        operation = body.get("operation", "*")
        if operation not in OPERATIONS:
            raise ControlError(400, f"operation must be one of {sorted(OPERATIONS)}")
        status = body.get("status", 500)
        try:
            fault = Fault(
                operation=operation,
                status=None if status is None else int(status),
                count=int(body.get("count", 1)),
                delay=float(body.get("delay", 0.0)),
            )
        except (TypeError, ValueError):
            raise ControlError(400, "status, count and delay must be numbers") from None
        if fault.status is None and fault.delay <= 0:
            raise ControlError(400, "a fault needs a status, a delay, or both")
        self.faults.add(fault)
        return web.json_response(fault.to_json(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"faults": []})
