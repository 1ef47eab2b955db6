"""Checking a bot token with Telegram's ``getMe`` before a buyer pays for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from fleet.billing.errors import BotTokenRejected
from schemas.tenants import bot_id_of, check_bot_token

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org"


@dataclass(frozen=True)
class BotIdentity:
    """Who a token belongs to, as Telegram says."""

    id: int
    username: str
    first_name: str


class BotTokenVerifier:
    """Asks the Bot API (``api_base``: Telegram, or the sandbox emulator) who a token is."""

    def __init__(
        self,
        *,
        api_base: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = (api_base or TELEGRAM_API).rstrip("/")
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> BotIdentity:
        """The bot behind ``token``; BotTokenRejected otherwise, with ``reason`` ``malformed`` (not
        shaped like a token), ``invalid`` (Telegram does not know it) or ``unreachable``."""
        try:
            token = check_bot_token(token)
        except ValueError as exc:
            raise BotTokenRejected("malformed", f"bot token {exc}") from None
        try:
            response = await self._http.get(f"{self._base}/bot{token}/getMe")
        except httpx.HTTPError as exc:
            log.warning("getMe failed", extra={"error": type(exc).__name__})
            raise BotTokenRejected("unreachable", "Telegram cannot be reached; try again") from exc
        if response.status_code in (401, 404):
            raise BotTokenRejected("invalid", "Telegram does not know this token")
        try:
            data = response.json()
        except ValueError:
            data = {}
        result = data.get("result") if isinstance(data, dict) else None
        if response.status_code != 200 or not data.get("ok") or not isinstance(result, dict):
            raise BotTokenRejected("unreachable", f"Telegram answered {response.status_code}")
        if not result.get("is_bot") or result.get("id") != bot_id_of(token):
            raise BotTokenRejected("invalid", "this token does not belong to a bot")
        return BotIdentity(
            id=int(result["id"]),
            username=str(result.get("username") or ""),
            first_name=str(result.get("first_name") or ""),
        )
