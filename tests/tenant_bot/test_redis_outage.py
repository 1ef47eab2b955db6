"""Redis away for one tenant bot: its users are told "try again in a minute", the outage is logged as
a warning without a traceback (one line per update, not a stack per tap) and counted (cause
``redis``, carried by the heartbeat into the control plane's /metrics); when Redis is back the bot
answers as ever.

The outage is made for real and for this tenant only: its Redis ACL user is switched off and its
connections killed, so every reconnection is refused (the shared server keeps serving everyone else).
"""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from tests.support.chat_helpers import say, wait_for_text
from tests.support.dw_helpers import wait_until


async def test_a_redis_outage_is_told_warned_once_per_update_and_counted(
    start_bot, tenant, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/start")
    await wait_for_text(anna, "Welcome")
    user = tenant.names.redis_user
    caplog.set_level(logging.WARNING, logger="tenant_bot")
    await redis.execute_command("ACL", "SETUSER", user, "off")
    try:
        await redis.execute_command("CLIENT", "KILL", "USER", user)
        await say(anna, "/start")
        await wait_for_text(anna, "try again", timeout=15)
        await wait_until(
            lambda: _counted(bot), timeout=10, what="the outage counted under cause 'redis'"
        )
    finally:
        await redis.execute_command("ACL", "SETUSER", user, "on")
    failed = [r for r in caplog.records if r.name == "tenant_bot.middlewares.errors"]
    assert failed, "the failed update was not logged"
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in failed)

    before = len(await anna.messages())
    await say(anna, "/start")
    await wait_until(
        lambda: _answered(anna, before), timeout=15, what="an answer after Redis is back"
    )


async def _counted(bot) -> bool:
    return bot.resources.core.outages.snapshot().get("redis", 0) >= 1


async def _answered(user, before: int) -> bool:
    messages = await user.messages()
    return len(messages) > before and "try again" not in (messages[-1]["text"] or "")
