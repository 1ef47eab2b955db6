"""The YooKassa stand-in as a server you can start in a test or from the CLI.

Example::

    async with YooKassaStandIn.start(shop_id="123456", secret_key="test_secret",
                                     webhook_url="http://127.0.0.1:8000/webhooks/yookassa") as yk:
        Configuration.configure("123456", "test_secret", api_url=yk.api_url)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from sandbox._http import RunningApp, serve_app
from sandbox.yookassa.api import PaymentsApi, api_errors
from sandbox.yookassa.checkout import CheckoutPages
from sandbox.yookassa.control import ControlApi, control_errors
from sandbox.yookassa.faults import FaultPlan
from sandbox.yookassa.ledger import PaymentLedger
from sandbox.yookassa.notifier import NotificationSender, NotificationSenderConfig
from sandbox.yookassa.payments import Payment
from sandbox.yookassa.receipts import ReceiptRules
from sandbox.yookassa.refunds import Refund

logger = logging.getLogger(__name__)

DEFAULT_SHOP_ID = "100500"
# A well-known test credential of the sandbox, never a real secret.
DEFAULT_SECRET_KEY = "test_sandbox_secret_key"  # noqa: S105


class YooKassaStandIn:
    """YooKassa API v3 for payments and refunds, a checkout page, notifications and a control API."""

    def __init__(
        self,
        *,
        shop_id: str = DEFAULT_SHOP_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        notifier: NotificationSenderConfig | None = None,
        public_url: str | None = None,
        receipts: ReceiptRules | None = None,
    ) -> None:
        self.shop_id = shop_id
        self.secret_key = secret_key
        self.public_url = public_url
        self.notifier = NotificationSender(notifier)
        self.faults = FaultPlan()
        self.ledger = PaymentLedger(shop_id=shop_id, on_event=self._on_event, receipts=receipts)
        self.api = PaymentsApi(
            self.ledger, shop_id=shop_id, secret_key=secret_key, faults=self.faults
        )
        self.checkout = CheckoutPages(self.ledger, shop_id=shop_id)
        self.control = ControlApi(self.ledger, notifier=self.notifier, faults=self.faults)
        self._running: RunningApp | None = None

    def _on_event(self, event: str, obj: dict[str, Any]) -> None:
        self.notifier.notify(event, obj)

    def make_app(self) -> web.Application:
        """The aiohttp application (API, checkout pages, control API)."""
        app = web.Application(middlewares=[api_errors, control_errors])
        app.add_routes(self.api.routes())
        app.add_routes(self.checkout.routes())
        app.add_routes(self.control.routes())
        return app

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running stand-in."""
        if self._running is None:
            raise RuntimeError("the stand-in is not running")
        return self._running.base_url

    @property
    def api_url(self) -> str:
        """What to give ``Configuration.configure(..., api_url=...)``: ``{base_url}/v3``."""
        return f"{self.base_url}/v3"

    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; returns the base URL (``port=0`` picks a free port)."""
        if self._running is not None:
            raise RuntimeError("the stand-in is already running")
        self._running = await serve_app(self.make_app(), host=host, port=port)
        public = (self.public_url or self._running.base_url).rstrip("/")
        self.ledger.checkout_url = f"{public}/checkout"
        logger.info("yookassa stand-in listening url=%s", self._running.base_url)
        return self._running.base_url

    async def stop(self) -> None:
        """Stop notifications in flight and close the server."""
        await self.notifier.close()
        if self._running is not None:
            running, self._running = self._running, None
            await running.stop()

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shop_id: str = DEFAULT_SHOP_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_url: str | None = None,
        notify_from: str | None = None,
        notifier: NotificationSenderConfig | None = None,
        public_url: str | None = None,
        require_receipts: bool = False,
        require_tax_system: bool = False,
    ) -> AsyncIterator[YooKassaStandIn]:
        """Run a stand-in for the duration of the ``async with`` block.

        ``webhook_url`` and ``notify_from`` (the source address of notifications) override the
        fields of ``notifier``. ``require_receipts``: the shop must send a valid 54-FZ ``receipt``
        with every payment and partial refund (400 ``invalid_request`` otherwise), as a shop on
        YooKassa's 54-FZ solution; ``require_tax_system``: each receipt must name its
        ``tax_system_code`` (a shop with several tax systems).
        """
        config = notifier or NotificationSenderConfig()
        if webhook_url is not None:
            config.webhook_url = webhook_url
        if notify_from is not None:
            config.source_address = notify_from
        standin = cls(
            shop_id=shop_id,
            secret_key=secret_key,
            notifier=config,
            public_url=public_url,
            receipts=ReceiptRules(
                required=require_receipts, tax_system_required=require_tax_system
            ),
        )
        await standin.serve(host=host, port=port)
        try:
            yield standin
        finally:
            await standin.stop()

    # In-process shortcuts for tests holding the stand-in object.

    def set_webhook(self, url: str | None, *, source_address: str | None = None) -> None:
        """Where notifications go (and from which local address)."""
        self.notifier.config.webhook_url = url
        if source_address is not None:
            self.notifier.config.source_address = source_address

    def settle_refund(self, refund_id: str) -> Refund:
        """Settle a pending refund (``refund.succeeded`` is notified)."""
        return self.ledger.settle_refund(refund_id)

    def succeed(self, payment_id: str) -> Payment:
        """Pay a pending payment as the payer would."""
        return self.ledger.pay(payment_id)

    def cancel(self, payment_id: str, *, reason: str = "expired_on_confirmation") -> Payment:
        """Cancel a payment as the payer/bank would."""
        return self.ledger.decline(payment_id, reason=reason)

    async def wait_notifications(self, timeout: float = 10.0) -> None:
        """Wait until every notification so far was delivered or given up."""
        await self.notifier.drain(timeout)
