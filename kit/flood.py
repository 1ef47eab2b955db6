"""Telegram flood control: wait out a short "retry after" instead of failing the user's request.

Telegram allows about one message per second per chat with short bursts; a customer tapping fast, or
one purchase step that sends several messages (an answer, a deleted token message, the next
question), can exceed it by a message or two. A 429 with a short ``retry_after`` is waited out and
the request repeated (a few times at most); a long one is raised, so a handler never stalls for
minutes. Both bots install it on their ``Bot`` session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramRetryAfter

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response

log = logging.getLogger(__name__)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Repeats a request refused by flood control when the wait is at most ``max_wait`` seconds."""

    def __init__(self, *, max_wait: float = 5.0, attempts: int = 3) -> None:
        self.max_wait = max_wait
        self.attempts = attempts

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise
                log.info(
                    "flood control, retrying",
                    extra={"method": type(method).__name__, "retry_after": exc.retry_after},
                )
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")
