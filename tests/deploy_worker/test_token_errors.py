"""How the worker classifies a failed getMe: a token Telegram refuses parks the job at once, an
unreachable Telegram is retried (the end-to-end case is test_provisioning.py's invalid token)."""

from __future__ import annotations

import pytest

from deploy_worker.errors import (
    InvalidBotToken,
    PermanentJobError,
    RetryableJobError,
    token_job_error,
)
from fleet.errors import BotTokenRejected


@pytest.mark.parametrize("reason", ["malformed", "invalid"])
def test_a_refused_token_is_permanent(reason: str) -> None:
    error = token_job_error(BotTokenRejected(reason, "Telegram rejected the bot token (401: x)"))
    assert isinstance(error, InvalidBotToken) and isinstance(error, PermanentJobError)
    assert str(error) == (
        "Telegram rejected the bot token (401: x); the owner must give a valid token from @BotFather"
    )


def test_an_unreachable_telegram_is_retried() -> None:
    error = token_job_error(BotTokenRejected("unreachable", "Telegram getMe failed (502: x)"))
    assert type(error) is RetryableJobError
    assert str(error) == "Telegram getMe failed (502: x); will retry"
