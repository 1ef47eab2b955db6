"""Which faults are retried and which set an item aside, and how long a retry waits.

A text that cannot be rendered is the item's own fault: it is set aside (``failed``) with the render
error, never sent and never retried; the send is not even attempted.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from jinja2 import UndefinedError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tenant_bot.courier import Courier, Message
from tenant_bot.delivery import Delivery, Outcome, classify, retry_delay
from tenant_bot.resources import make_bot
from tenant_bot.texts import BotTexts

METHOD = SendMessage(chat_id=1, text="x")


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (TelegramBadRequest(METHOD, "Bad Request: chat not found"), Outcome.FAILED),
        (TelegramForbiddenError(METHOD, "Forbidden: bot was blocked by the user"), Outcome.FAILED),
        (TelegramServerError(METHOD, "Bad Gateway"), Outcome.RETRY),
        (TelegramNetworkError(METHOD, "timeout"), Outcome.RETRY),
        (TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=90), Outcome.RETRY),
        (TimeoutError(), Outcome.RETRY),
        (RedisConnectionError("down"), Outcome.RETRY),
        (UndefinedError("'p' is undefined"), Outcome.FAILED),
        (KeyError("delete_at"), Outcome.FAILED),
    ],
)
def test_classify(exc: BaseException, outcome: Outcome) -> None:
    assert classify(exc) is outcome


def test_retry_waits_grow_and_honour_flood_waits() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 6, 50)] == [
        30,
        60,
        120,
        240,
        480,
        900,
        900,
    ]
    flood = Delivery.of(TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=300))
    assert flood.next_attempt_in(1) == timedelta(seconds=300)
    assert flood.next_attempt_in(6) == timedelta(minutes=15)
    assert flood.error is not None and flood.error.startswith("TelegramRetryAfter")


async def test_a_text_that_cannot_render_is_failed_without_sending(
    redis: Redis, unique_slug: str
) -> None:
    from schemas.runtime import TenantRuntime

    runtime = TenantRuntime(
        slug=unique_slug,
        bot_token="123456789:" + "A" * 35,
        database_url="postgresql://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
        redis_prefix=f"tenant_:t:{unique_slug}:",
        owner_ids=[1],
        telegram_api_base="http://127.0.0.1:1",  # nothing listens: a send would fail as RETRY
    )
    bot = make_bot(runtime)
    texts = BotTexts(default_locale="en")
    courier = Courier(bot, redis=redis, prefix=runtime.redis_prefix)

    def render() -> Message:
        return texts("en", "owner_moved", when=_Unprintable()), None

    try:
        result = await courier.attempt(1, render)
    finally:
        await bot.session.close()
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.startswith("render: ValueError")


class _Unprintable:
    """A value a template cannot turn into text (stands for corrupt data reaching a template)."""

    def __str__(self) -> str:
        raise ValueError("cannot be shown")
