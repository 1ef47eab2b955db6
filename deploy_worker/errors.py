"""The deploy worker's errors; lower-level docker / OS / HTTP errors are wrapped at the boundary.

- :class:`WorkerError` — base of everything below (itself a :class:`fleet.errors.BotfleetError`).
- :class:`PermanentJobError` — retrying cannot help (an invalid bot token): the job goes ``dead`` at once.
- :class:`InvalidBotToken` — ``getMe`` refused the token (malformed, unknown to Telegram, not a bot).
- :class:`RetryableJobError` — may pass (Telegram or a runtime unreachable): retried with backoff.
- :class:`RuntimeBackendError` — the container runtime failed an operation.
- :class:`HeartbeatTimeout` — the bot did not report ready in time.
- :class:`StateDirLocked` — another worker already runs the process runtime on this state directory.

:func:`token_job_error` turns a failed ``getMe`` (:class:`fleet.errors.BotTokenRejected`) into one of them.
"""

from __future__ import annotations

from fleet.errors import BotfleetError, BotTokenRejected


class WorkerError(BotfleetError):
    """Base of the deploy worker's errors."""


class PermanentJobError(WorkerError):
    """A failure that retrying cannot fix; the job is parked as dead immediately."""


class InvalidBotToken(PermanentJobError):
    """Telegram does not know the bot token (revoked, mistyped)."""


class RetryableJobError(WorkerError):
    """A failure that may pass; the job is retried with backoff."""


class RuntimeBackendError(RetryableJobError):
    """The container runtime (docker, swarm, the process supervisor) failed an operation."""


class HeartbeatTimeout(RetryableJobError):
    """The tenant bot did not write its heartbeat in time."""


class StateDirLocked(WorkerError):
    """Another worker holds the process runtime's state directory (one worker per directory)."""


def token_job_error(rejected: BotTokenRejected) -> WorkerError:
    """The job error for a failed ``getMe``: :class:`InvalidBotToken` (the job is dead at once) for a
    token Telegram refuses, :class:`RetryableJobError` when Telegram could not be asked."""
    if rejected.reason == "unreachable":
        return RetryableJobError(f"{rejected}; will retry")
    return InvalidBotToken(f"{rejected}; the owner must give a valid token from @BotFather")
