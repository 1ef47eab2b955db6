"""Errors the emulated Bot API answers with, shaped exactly like Telegram's.

Every failure a method handler can meet is a :class:`BotAPIError`; the HTTP layer turns it into
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``. The helper
constructors spell the descriptions the way Telegram does, so aiogram maps them onto the same
exception classes (``TelegramBadRequest``, ``TelegramForbiddenError``, ``TelegramRetryAfter``...).
"""

from __future__ import annotations

from typing import Any


class BotAPIError(Exception):
    """A Bot API error response: HTTP status ``error_code`` and Telegram's ``description``."""

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_payload(self) -> dict[str, Any]:
        """Render the JSON body Telegram sends for this error."""
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            payload["parameters"] = {"retry_after": self.retry_after}
        return payload


def bad_request(detail: str) -> BotAPIError:
    """``400 Bad Request: <detail>``."""
    return BotAPIError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> BotAPIError:
    """``403 Forbidden: <detail>``."""
    return BotAPIError(403, f"Forbidden: {detail}")


def unauthorized() -> BotAPIError:
    """What Telegram answers for an unknown or revoked token."""
    return BotAPIError(401, "Unauthorized")


def not_found() -> BotAPIError:
    """What Telegram answers for an unknown method name."""
    return BotAPIError(404, "Not Found")


def conflict(detail: str) -> BotAPIError:
    """``409 Conflict: <detail>`` (getUpdates vs webhook, two pollers)."""
    return BotAPIError(409, f"Conflict: {detail}")


def too_many_requests(retry_after: int) -> BotAPIError:
    """``429`` with ``parameters.retry_after`` as Telegram sends when a bot floods."""
    return BotAPIError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        retry_after=retry_after,
    )


def bot_blocked() -> BotAPIError:
    """The user blocked the bot."""
    return forbidden("bot was blocked by the user")


def cannot_initiate() -> BotAPIError:
    """The user exists but never started a conversation with the bot."""
    return forbidden("bot can't initiate conversation with a user")


class ControlError(Exception):
    """A bad request to the sandbox control API (not part of the Bot API)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
