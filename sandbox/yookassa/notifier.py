"""Sending YooKassa HTTP notifications to the merchant's webhook, never blocking the API.

Each notification is POSTed from a configurable local address (YooKassa's sender addresses are
checked by the merchant, so tests bind a loopback alias such as ``127.0.0.77``) and retried with
exponential backoff on non-2xx answers and connection errors, like YooKassa does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)


@dataclass
class NotificationSenderConfig:
    """Where and how notifications go; ``webhook_url=None`` keeps them to the delivery log."""

    webhook_url: str | None = None
    source_address: str | None = None
    retry_initial: float = 1.0
    retry_max: float = 60.0
    max_attempts: int = 10
    timeout: float = 10.0


@dataclass
class Delivery:
    """One notification and the story of its delivery attempts."""

    number: int
    event: str
    payment_id: str
    body: dict[str, Any]
    url: str | None
    attempts: int = 0
    delivered: bool = False
    gave_up: bool = False
    last_status: int | None = None
    last_error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "number": self.number,
            "event": self.event,
            "payment_id": self.payment_id,
            "url": self.url,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "gave_up": self.gave_up,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "body": self.body,
        }


class NotificationSender:
    """Sends YooKassa's payment notifications to the merchant's webhook, each in a background task.

    (Not the tenant bot's ``Notifier``, which tells people about bookings.)
    """

    def __init__(self, config: NotificationSenderConfig | None = None) -> None:
        self.config = config or NotificationSenderConfig()
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._client_address: str | None = None

    def notify(self, event: str, payment: dict[str, Any]) -> Delivery:
        """Schedule ``{"type": "notification", "event", "object"}`` for delivery."""
        body = {"type": "notification", "event": event, "object": payment}
        delivery = Delivery(
            number=len(self.deliveries) + 1,
            event=event,
            payment_id=payment["id"],
            body=body,
            url=self.config.webhook_url,
        )
        self.deliveries.append(delivery)
        if delivery.url is None:
            delivery.last_error = "no webhook URL configured"
            delivery.gave_up = True
            delivery.done.set()
            return delivery
        task = asyncio.create_task(
            self._deliver(delivery), name=f"yookassa-notify-{delivery.number}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled delivery succeeded or gave up."""
        pending = [d.done.wait() for d in self.deliveries if not d.done.is_set()]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), timeout)

    async def close(self) -> None:
        """Cancel deliveries in flight and close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        address = self.config.source_address
        if self._client is None or self._client_address != address:
            if self._client is not None:
                old = self._client
                task = asyncio.create_task(old.aclose())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            transport = httpx.AsyncHTTPTransport(local_address=address) if address else None
            self._client = httpx.AsyncClient(transport=transport, timeout=self.config.timeout)
            self._client_address = address
        return self._client

    async def _deliver(self, delivery: Delivery) -> None:
        config = self.config
        try:
            while delivery.attempts < config.max_attempts:
                delivery.attempts += 1
                if await self._attempt(delivery):
                    delivery.delivered = True
                    return
                if delivery.attempts >= config.max_attempts:
                    break
                delay = config.retry_initial * 2 ** (delivery.attempts - 1)
                await asyncio.sleep(min(config.retry_max, delay))
            delivery.gave_up = True
            logger.warning(
                "notification given up number=%s event=%s attempts=%s",
                delivery.number,
                delivery.event,
                delivery.attempts,
            )
        finally:
            delivery.done.set()

    async def _attempt(self, delivery: Delivery) -> bool:
        assert delivery.url is not None
        try:
            response = await self._http().post(delivery.url, json=delivery.body)
        except httpx.HTTPError as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}"
            logger.info(
                "notification failed number=%s error=%s", delivery.number, type(exc).__name__
            )
            return False
        delivery.last_status = response.status_code
        if 200 <= response.status_code < 300:
            delivery.last_error = None
            return True
        delivery.last_error = f"HTTP {response.status_code}"
        logger.info(
            "notification refused number=%s status=%s", delivery.number, response.status_code
        )
        return False
