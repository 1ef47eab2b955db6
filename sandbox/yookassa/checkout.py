"""The payer's side: the confirmation page behind ``confirmation_url`` with Pay and Cancel."""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from sandbox.yookassa.errors import YooKassaError
from sandbox.yookassa.ledger import PaymentLedger

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=True,
)


class CheckoutPages:
    """HTML routes under ``/checkout``; both buttons are plain form POSTs."""

    def __init__(self, ledger: PaymentLedger, *, shop_id: str) -> None:
        self.ledger = ledger
        self.shop_id = shop_id
        self.template = _templates.get_template("checkout.html")

    def routes(self) -> list[web.RouteDef]:
        """aiohttp routes of the checkout pages."""
        return [
            web.get("/checkout/{payment_id}", self.page),
            web.post("/checkout/{payment_id}/pay", self.pay),
            web.post("/checkout/{payment_id}/cancel", self.cancel),
        ]

    def _render(self, request: web.Request, payment_id: str, status: int = 200) -> web.Response:
        payment = self.ledger.payments.get(payment_id)
        if payment is None:
            return web.Response(text="Payment not found", status=404)
        data = payment.to_api()
        html = self.template.render(
            payment=data,
            amount=data["amount"],
            receipt=payment.request.receipt,
            shop_id=self.shop_id,
            return_url=payment.request.return_url,
            base=f"{request.scheme}://{request.host}",
        )
        return web.Response(text=html, content_type="text/html", status=status)

    async def page(self, request: web.Request) -> web.Response:
        """The confirmation page."""
        return self._render(request, request.match_info["payment_id"])

    def _after(self, request: web.Request, payment_id: str) -> web.Response:
        payment = self.ledger.payments[payment_id]
        if payment.request.return_url:
            raise web.HTTPSeeOther(payment.request.return_url)
        return self._render(request, payment_id)

    async def pay(self, request: web.Request) -> web.Response:
        """ "Pay": the payment succeeds (or waits for capture), then back to ``return_url``."""
        payment_id = request.match_info["payment_id"]
        try:
            self.ledger.pay(payment_id)
        except YooKassaError as error:
            return web.Response(text=error.description, status=error.status)
        return self._after(request, payment_id)

    async def cancel(self, request: web.Request) -> web.Response:
        """ "Cancel": the payer abandons; the payment is canceled by YooKassa."""
        payment_id = request.match_info["payment_id"]
        try:
            self.ledger.decline(payment_id)
        except YooKassaError as error:
            return web.Response(text=error.description, status=error.status)
        return self._after(request, payment_id)
