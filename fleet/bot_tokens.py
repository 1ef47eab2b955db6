"""Checking a bot token with the Telegram Bot API's ``getMe``: the one checker of the platform.

The sales bot asks before a buyer pays for a token (or changes it); the deploy worker asks again before
it builds anything for a tenant. Both get a :class:`BotIdentity` or a
:class:`~fleet.errors.BotTokenRejected` whose ``reason`` classifies the failure the same way for both:

- ``malformed``: not shaped like a @BotFather token (no request is sent);
- ``invalid``: Telegram does not know the token (401 or 404, in the status or the body's ``error_code``),
  or it names no bot, or another bot than the token's id: permanent, the owner must give another one;
- ``unreachable``: timeouts, connection errors, 429, 5xx or an answer without a bot: may pass.

What each caller makes of it is its own: the sales bot shows the owner a text per reason; the worker
parks the job as dead (``malformed``, ``invalid``) or retries it (``unreachable``). The token is part of
the URL, so no message or log line here ever includes the URL or the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from fleet.errors import BotTokenRejected
from schemas.tenants import bot_id_of, check_bot_token

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BotIdentity:
    """Who a token belongs to, as ``getMe`` says (``username`` is ``""`` if Telegram gives none)."""

    id: int
    username: str
    first_name: str


class BotTokenChecker:
    """Asks the Bot API (``api_base``: Telegram, or the sandbox emulator) who a token is.

    ``client`` shares a caller's ``httpx.AsyncClient`` (the worker's), which :meth:`aclose` leaves open;
    without one the checker opens its own (``transport`` swaps its transport in tests). Every request
    is bounded by ``timeout`` seconds.
    """

    def __init__(
        self,
        *,
        api_base: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if client is not None and transport is not None:
            raise ValueError("give the checker a client or a transport, not both")
        self._base = (api_base or TELEGRAM_API).rstrip("/")
        self._timeout = timeout
        self._own_client = client is None
        self._http = client or httpx.AsyncClient(timeout=timeout, transport=transport)

    @property
    def host(self) -> str:
        """The Bot API's host (for messages: the URL itself would carry the token)."""
        return urlsplit(self._base).netloc

    async def aclose(self) -> None:
        """Close the client the checker opened (a shared one stays open)."""
        if self._own_client:
            await self._http.aclose()

    async def get_me(self, token: str) -> BotIdentity:
        """The bot behind ``token``; :class:`BotTokenRejected` otherwise (see the module docstring)."""
        try:
            token = check_bot_token(token)
        except ValueError as exc:
            raise BotTokenRejected("malformed", f"bot token {exc}") from None
        try:
            response = await self._http.get(f"{self._base}/bot{token}/getMe", timeout=self._timeout)
        except httpx.HTTPError as exc:
            log.warning("getMe failed", extra={"host": self.host, "error": type(exc).__name__})
            raise BotTokenRejected(
                "unreachable",
                f"cannot reach the Telegram Bot API at {self.host}: {type(exc).__name__}",
            ) from None
        body = _json_object(response)
        status = response.status_code
        description = str(body.get("description") or response.reason_phrase or "no description")
        answer = f"{status}: {description[:200]}"
        if status in (401, 404) or body.get("error_code") in (401, 404):
            raise BotTokenRejected("invalid", f"Telegram rejected the bot token ({answer})")
        result = body.get("result")
        if status != 200 or not body.get("ok") or not isinstance(result, dict):
            raise BotTokenRejected("unreachable", f"Telegram getMe failed ({answer})")
        if not result.get("is_bot") or result.get("id") != bot_id_of(token):
            raise BotTokenRejected("invalid", "the bot token does not belong to a bot")
        return BotIdentity(
            id=int(result["id"]),
            username=str(result.get("username") or ""),
            first_name=str(result.get("first_name") or ""),
        )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
