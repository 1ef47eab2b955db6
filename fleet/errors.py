"""The error tree of the platform's shared base.

Every error the platform raises on purpose derives from :class:`BotfleetError` and carries a message
that tells the reader what to fix. Lower-level errors (asyncpg, redis, OS) are wrapped at the boundary
with ``raise ... from exc`` so callers handle one hierarchy.

- :class:`ConfigError` — a setting is missing or malformed (named, with what a valid one looks like).
- :class:`ValidationError` — an input value (slug, token, time zone, ...) is not acceptable.
- :class:`ConflictError` — the input is valid but clashes with existing state (duplicate slug, token in use).
- :class:`NotFoundError` — the thing asked for does not exist.
- :class:`ServiceUnavailable` — PostgreSQL or Redis cannot be reached (host and port named, never a password).
- :class:`MigrationError` — a migration cannot be applied (edited file, SQL error), naming the schema and file.
- :class:`SecretError` — a secret cannot be decrypted (wrong or missing master key).
- :class:`BotTokenRejected` — Telegram's ``getMe`` does not accept a bot token (``reason`` says why:
  ``malformed``, ``invalid`` or ``unreachable``; see :mod:`fleet.bot_tokens`).
"""

from __future__ import annotations


class BotfleetError(Exception):
    """Base class of every deliberate platform error."""


class ConfigError(BotfleetError):
    """A setting is missing or malformed."""


class ValidationError(BotfleetError):
    """An input value is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConflictError(BotfleetError):
    """The input clashes with existing state; ``field`` names the clashing input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFoundError(BotfleetError):
    """The requested object does not exist."""


class ServiceUnavailable(BotfleetError):
    """A backing service (PostgreSQL, Redis) cannot be reached."""


class MigrationError(BotfleetError):
    """A migration could not be applied."""


class SecretError(BotfleetError):
    """A secret could not be encrypted or decrypted."""


class BotTokenRejected(BotfleetError):
    """``getMe`` did not accept a bot token; ``reason`` is ``malformed`` or ``invalid`` (the owner must
    give another token) or ``unreachable`` (Telegram did not answer usefully: try again)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
