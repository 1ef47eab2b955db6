"""The stand-in's control API (``/sandbox/...``): pay or cancel as the payer, steer delivery.

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
            web.get("/sandbox/webhook", self.get_webhook),
            web.put("/sandbox/webhook", self.set_webhook),
            web.get("/sandbox/notifications", self.notifications),
            web.get("/sandbox/faults", self.list_faults),
            web.post("/sandbox/faults", self.add_fault),
            web.delete("/sandbox/faults", self.clear_faults),
        ]

    def _payment(self, payment_id: str) -> dict[str, Any]:
        try:
            return self.ledger.get(payment_id).to_api()
        except YooKassaError:
            raise ControlError(404, f"payment {payment_id} does not exist") from None

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def list_payments(self, request: web.Request) -> web.Response:
        payments = [p.to_api() for p in self.ledger.payments.values()]
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
        return web.json_response(payment.to_api())

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
