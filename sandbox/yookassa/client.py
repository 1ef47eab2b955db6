"""Async client of the YooKassa stand-in's control API (works in-process or against the CLI)."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.telegram.client import SandboxError


class YooKassaSandbox:
    """Pay or cancel payments as the payer, steer notifications and inject faults."""

    def __init__(
        self, base_url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self._http = client or httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> YooKassaSandbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_client:
            await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the control API; raises :class:`SandboxError` on a 4xx/5xx answer."""
        response = await self._http.request(method, f"{self.base_url}/sandbox{path}", **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise SandboxError(response.status_code, message)
        return response.json()

    async def succeed(self, payment_id: str) -> dict[str, Any]:
        """Pay like the Pay button; returns the payment."""
        return await self.request("POST", f"/payments/{payment_id}/succeed")

    async def cancel(self, payment_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """Abandon/decline like the Cancel button; returns the payment."""
        body = {"reason": reason} if reason else {}
        return await self.request("POST", f"/payments/{payment_id}/cancel", json=body)

    async def payment(self, payment_id: str) -> dict[str, Any]:
        """A payment without API credentials."""
        return await self.request("GET", f"/payments/{payment_id}")

    async def receipts(self) -> dict[str, Any]:
        """The shop's receipt rules and every receipt sent with payments and refunds."""
        return await self.request("GET", "/receipts")

    async def set_receipt_rules(
        self, *, required: bool | None = None, tax_system_required: bool | None = None
    ) -> dict[str, Any]:
        """Switch the shop's 54-FZ settings (what YooKassa demands in ``receipt``)."""
        body = {
            k: v
            for k, v in (("required", required), ("tax_system_required", tax_system_required))
            if v is not None
        }
        return await self.request("PUT", "/receipts", json=body)

    async def refunds(self) -> list[dict[str, Any]]:
        """Every refund with its receipt."""
        return (await self.request("GET", "/refunds"))["refunds"]

    async def settle_refunds_later(self, later: bool = True) -> None:
        """New refunds stay ``pending`` until :meth:`settle_refund` (or succeed at once)."""
        await self.request("PUT", "/refunds/settle", json={"later": later})

    async def settle_refund(self, refund_id: str) -> dict[str, Any]:
        """A pending refund succeeds; ``refund.succeeded`` is notified."""
        return await self.request("POST", f"/refunds/{refund_id}/succeed")

    async def set_webhook(self, url: str | None, *, source_address: str | None = None) -> None:
        """Where notifications go; ``None`` stops sending."""
        body: dict[str, Any] = {"url": url}
        if source_address is not None:
            body["source_address"] = source_address
        await self.request("PUT", "/webhook", json=body)

    async def notifications(self) -> list[dict[str, Any]]:
        """The notification delivery log."""
        return (await self.request("GET", "/notifications"))["notifications"]

    async def inject_fault(
        self, operation: str = "*", *, status: int | None = 500, count: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next ``count`` API calls of ``operation`` fail and/or hang ``delay`` seconds."""
        body = {"operation": operation, "status": status, "count": count, "delay": delay}
        await self.request("POST", "/faults", json=body)
