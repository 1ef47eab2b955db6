"""``sales_bot.app.run``, the real entry point, against the Telegram emulator and the YooKassa
stand-in with real settings: getMe at startup, long polling next to the outbox delivery loop, and a
clean stop when ``stop`` is set.

``run`` delivers every due event in ``control.events`` (its outbox is not scoped to tenants), so
against the shared test database it would take the events of tests running in parallel. It runs on
a throw-away database of its own instead."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from aiogram import Bot
from pydantic import SecretStr
from redis.asyncio import Redis

import sales_bot.app as sales_app
from fleet.data_plane import install_platform
from fleet.db import create_pool
from fleet.migrations import migrate_control
from fleet.repositories.events import insert_event
from fleet.secrets import SecretBox, generate_master_key
from fleet.settings import Settings
from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from sandbox.testing import bot_id_of, new_bot_token
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn
from schemas.events import TenantLive

STOP_WITHIN_S = 5.0


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def own_database_url(database_url: str) -> AsyncIterator[str]:
    """A database of this test alone, the platform installed and control migrated; dropped after."""
    parts = urlsplit(database_url)
    name = "botfleet_salesrun_" + secrets.token_hex(4)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = urlunsplit(parts._replace(path="/" + name))
    try:
        setup = await create_pool(url, min_size=1, max_size=2)
        try:
            async with setup.acquire() as conn:
                await install_platform(conn)
            await migrate_control(setup)
        finally:
            await setup.close()
        yield url
    finally:
        await _drop_database(admin_url, name)


@pytest_asyncio.fixture
async def own_pool(own_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(own_database_url, min_size=1, max_size=5)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def made_bots(monkeypatch: pytest.MonkeyPatch) -> list[Bot]:
    """The Bots ``run`` makes (``make_bot`` unchanged, only recorded), to check their sessions."""
    made: list[Bot] = []
    real = sales_app.make_bot

    def recording(token: str, *, api_base: str | None) -> Bot:
        bot = real(token, api_base=api_base)
        made.append(bot)
        return bot

    monkeypatch.setattr(sales_app, "make_bot", recording)
    return made


def _settings(**values: Any) -> Settings:
    """Real settings (no .env read), with the test's servers and credentials."""
    return Settings(_env_file=None).model_copy(update=values)  # type: ignore[call-arg]


async def _bot_message(user: TelegramUser, fragment: str, *, timeout: float = 10.0) -> str:
    """The text of the first bot message containing ``fragment``, waiting for it to arrive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        chat = await user.chat()
        for message in chat["messages"]:
            if message["from"] == "bot" and fragment in (message.get("text") or ""):
                return str(message["text"])
        remaining = deadline - loop.time()
        if remaining <= 0:
            sent = [m.get("text") for m in chat["messages"] if m["from"] == "bot"]
            raise AssertionError(f"no bot message with {fragment!r}; the bot sent {sent}")
        with contextlib.suppress(TimeoutError):
            await user.wait_for_change(chat["version"], timeout=remaining)


async def _insert_tenant(pool: asyncpg.Pool, *, owner: int) -> tuple[int, str]:
    """A tenant owned by ``owner`` (only the columns the outbox reads matter)."""
    bot_id = bot_id_of(new_bot_token())
    username = f"barber{bot_id}_bot"
    tenant_id = await pool.fetchval(
        "INSERT INTO control.tenants (slug, display_name, owner_telegram_ids, locale, timezone,"
        " bot_token_enc, bot_token_fingerprint, bot_id, bot_username, db_password_enc,"
        " redis_password_enc, status, desired_state)"
        " VALUES ($1, 'Ivan''s Barbershop', $2, 'en', 'Europe/Moscow', 'x', $3, $4, $5, 'x', 'x',"
        " 'provisioning', 'running') RETURNING id",
        "t" + secrets.token_hex(6),
        [owner],
        secrets.token_hex(16),
        bot_id,
        username,
    )
    return int(tenant_id), username


async def test_run_polls_delivers_events_and_stops_cleanly(
    own_database_url: str,
    own_pool: asyncpg.Pool,
    redis: Redis,
    redis_url: str,
    telegram_emulator: TelegramEmulator,
    telegram_sandbox: TelegramSandbox,
    yookassa_standin: YooKassaStandIn,
    made_bots: list[Bot],
) -> None:
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username=f"sales{bot_id_of(token)}_bot")
    settings = _settings(
        database_url=own_database_url,
        redis_url=redis_url,
        telegram_api_base=telegram_emulator.base_url,
        sales_bot_token=SecretStr(token),
        yookassa_shop_id=str(DEFAULT_SHOP_ID),
        yookassa_secret_key=SecretStr(DEFAULT_SECRET_KEY),
        yookassa_api_url=yookassa_standin.api_url,
        yookassa_return_url="https://t.me/botfleet_sales_bot",
        sales_outbox_interval_s=0.1,
        sales_rate_limit="1000/second",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(
        sales_app.run(
            settings,
            pool=own_pool,
            redis=redis,
            box=SecretBox(generate_master_key()),
            stop=stop,
        )
    )
    try:
        # Started: getMe answered and long polling under way.
        account = telegram_emulator.world.bots[bot_id_of(token)]
        while account.poll_generation == 0:
            assert not running.done(), running.result()
            await account.update_signal.wait_past(account.update_signal.version, 0.05)
        assert len(made_bots) == 1

        user = await telegram_sandbox.user(
            bot_id=bot_id_of(token),
            first_name="Ivan",
            language_code="en",
            id=secrets.randbelow(10**9) + 5 * 10**9,
        )
        welcome = await user.ask("/start")
        assert "Hello, Ivan" in welcome["text"] and "botfleet" in welcome["text"]

        # The deploy worker reports the owner's bot live; the outbox loop tells the owner.
        tenant_id, username = await _insert_tenant(own_pool, owner=user.id)
        await insert_event(
            own_pool,
            tenant_id=tenant_id,
            event=TenantLive(bot_username=username, previous_status="provisioning"),
        )
        await _bot_message(user, f"Your bot @{username} is live")
        # Recorded right after the send: the owner may read it a moment before the record lands.
        for _ in range(100):
            event = await own_pool.fetchrow(
                "SELECT delivered_at, last_error, attempts FROM control.events"
                " WHERE tenant_id = $1",
                tenant_id,
            )
            if event["delivered_at"] is not None:
                break
            await asyncio.sleep(0.05)
        assert event["delivered_at"] is not None and event["last_error"] is None
        assert event["attempts"] == 1
        assert not running.done()
    finally:
        stop.set()
        loop = asyncio.get_running_loop()
        asked = loop.time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(running), timeout=STOP_WITHIN_S)
        took = loop.time() - asked
        if not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            pytest.fail(f"run() did not return within {STOP_WITHIN_S}s of stop")

    assert running.result() is None
    assert took < STOP_WITHIN_S
    [bot] = made_bots
    session = bot.session._session  # aiogram's aiohttp ClientSession, None if never opened
    assert session is not None and session.closed
