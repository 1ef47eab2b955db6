"""Checking a bot token against the Telegram Bot API (``getMe``), before anything is built for it.

Telegram answers an unknown or revoked token with 401 (404 for a malformed one): that is permanent and
raised as :class:`InvalidBotToken`. Timeouts, connection errors, 429 and 5xx may pass and are raised
as :class:`RetryableJobError`. The token is part of the URL, so no error message here ever includes
the URL or the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from deploy_worker.errors import InvalidBotToken, RetryableJobError

DEFAULT_API_BASE = "https://api.telegram.org"


@dataclass(frozen=True)
class BotIdentity:
    """What ``getMe`` says about a bot."""

    id: int
    username: str | None
    first_name: str


class BotTokenChecker:
    """Calls ``getMe`` through an injected ``httpx.AsyncClient`` (tests swap its transport)."""

    def __init__(
        self, *, client: httpx.AsyncClient, api_base: str | None = None, timeout: float = 10.0
    ) -> None:
        self._client = client
        self._base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self._timeout = timeout

    @property
    def host(self) -> str:
        return urlsplit(self._base).netloc

    async def get_me(self, token: str) -> BotIdentity:
        """The bot behind ``token``; raises :class:`InvalidBotToken` if Telegram does not know it."""
        try:
            response = await self._client.get(
                f"{self._base}/bot{token}/getMe", timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise RetryableJobError(
                f"cannot reach the Telegram Bot API at {self.host}: {type(exc).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        description = str(body.get("description") or response.reason_phrase or "no description")[
            :200
        ]
        if response.status_code in (401, 404) or body.get("error_code") in (401, 404):
            raise InvalidBotToken(
                f"Telegram rejected the bot token ({response.status_code}: {description}); "
                "the owner must give a valid token from @BotFather"
            )
        if response.status_code != 200 or not body.get("ok"):
            raise RetryableJobError(
                f"Telegram getMe failed ({response.status_code}: {description}); will retry"
            )
        result = body.get("result") or {}
        return BotIdentity(
            id=int(result.get("id", 0)),
            username=result.get("username"),
            first_name=str(result.get("first_name", "")),
        )
