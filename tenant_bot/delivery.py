"""What became of one unsolicited message, and the tally of those that were set aside.

Every queue-like loop of the bot (reminders, "did they come?" cards, waitlist notices, owner notices)
sends items one by one, and each item ends in one of three ways:

- ``sent``;
- ``retry``: a passing fault (timeout, Telegram 5xx or 429, a connection reset). The item is tried
  again later with a growing delay (:func:`retry_delay`), if its loop can keep it;
- ``failed``: a fault no retry can fix (the text cannot be rendered, Telegram 400 "chat not found",
  the user blocked the bot). The item is set aside with its error, logged once with its id and kind,
  counted in :class:`DeliveryTally`, and the items behind it go on.

The tally feeds the heartbeat (:mod:`tenant_bot.heartbeat`), so operators see set-aside items without
reading logs. Logs name items by kind and id only: never a chat's text or a phone number.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from aiogram.exceptions import (
    ClientDecodeError,
    RestartingTelegram,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 500
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=15)

# Telegram answers that no repetition of the same request can change.
_PERMANENT_TELEGRAM = (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramEntityTooLarge,
)
# Telegram answers that say "not now".
_TRANSIENT_TELEGRAM = (
    TelegramRetryAfter,
    TelegramServerError,
    RestartingTelegram,
    TelegramNetworkError,
    ClientDecodeError,
)


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one attempt and, unless sent, why (``Type: message``, at most 500 chars)."""

    outcome: Outcome
    error: str | None = None
    retry_after: timedelta | None = None  # Telegram's flood wait, when it named one

    @classmethod
    def sent(cls) -> Delivery:
        return cls(Outcome.SENT)

    @classmethod
    def of(cls, exc: BaseException, *, context: str = "") -> Delivery:
        wait = exc.retry_after if isinstance(exc, TelegramRetryAfter) else None
        return cls(
            classify(exc),
            describe(exc, context=context),
            None if wait is None else timedelta(seconds=wait),
        )

    def next_attempt_in(self, attempts: int) -> timedelta:
        """The wait before retrying an item tried ``attempts`` times: the backoff, or Telegram's
        flood wait when that is longer."""
        delay = retry_delay(attempts)
        return max(delay, self.retry_after) if self.retry_after is not None else delay

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SENT


def describe(exc: BaseException, *, context: str = "") -> str:
    """``render: UndefinedError: 'x' is undefined`` — the error recorded and logged for an item."""
    text = f"{type(exc).__name__}: {exc}"
    return (f"{context}: {text}" if context else text)[:ERROR_MAX_CHARS]


def classify(exc: BaseException) -> Outcome:
    """``retry`` for faults that pass; ``failed`` for everything a retry would only repeat.

    A Telegram error not known to be either (a new status code) counts as passing: better one retry
    too many than a message dropped. Anything else raised while building or sending a message (a
    template that cannot render, bad data) is the item's own fault, so ``failed``.
    """
    if isinstance(exc, _PERMANENT_TELEGRAM):
        return Outcome.FAILED
    if isinstance(exc, (*_TRANSIENT_TELEGRAM, TelegramAPIError, TimeoutError, OSError, RedisError)):
        return Outcome.RETRY
    return Outcome.FAILED


def retry_delay(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: 30 s, 1 min, 2 min, ... at most 15 min."""
    exponent = max(0, min(attempts, 16) - 1)
    return min(RETRY_FIRST * (2**exponent), RETRY_MAX)


@dataclass
class DeliveryTally:
    """Counts, per kind, of items set aside and of passing failures since the process started."""

    failed: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)

    def set_aside(self, kind: str, item_id: int | str, error: str | None) -> None:
        """Count and log (once: the item is never tried again) an item that cannot be delivered."""
        self.failed[kind] += 1
        log.warning(
            "notification set aside", extra={"kind": kind, "item_id": item_id, "error": error}
        )

    def deferred(
        self, kind: str, item_id: int | str, error: str | None, retry_in: timedelta | None = None
    ) -> None:
        """Count and log a passing failure (``retry_in`` None: the item is not retried)."""
        self.retried[kind] += 1
        log.log(
            logging.INFO if retry_in is not None else logging.WARNING,
            "notification deferred" if retry_in is not None else "notification lost to a fault",
            extra={
                "kind": kind,
                "item_id": item_id,
                "error": error,
                "retry_in_s": None if retry_in is None else int(retry_in.total_seconds()),
            },
        )

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"failed": {kind: n}, "retried": {kind: n}}`` for the heartbeat."""
        return {"failed": dict(self.failed), "retried": dict(self.retried)}
