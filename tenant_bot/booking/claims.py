"""Claims of outbox-like rows (reminders, notices, review requests, mailings): a sender takes due
rows under a lease marked with a token of its own, so a sender whose lease was taken over cannot
settle what it no longer holds."""

from __future__ import annotations

import secrets
from datetime import timedelta

from tenant_bot.booking.errors import InvalidInput


def claim_token(worker: str = "") -> str:
    """A token unique to one claim, naming its sender (at most 40 characters of it)."""
    return f"{worker[:40]}:{secrets.token_hex(8)}"


def check_batch(limit: int, lease: timedelta) -> None:
    """A claim takes 1-1000 rows for a positive lease; :class:`InvalidInput` otherwise."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit", "must be 1-1000")
    if lease <= timedelta(0):
        raise InvalidInput("lease", "must be positive")
