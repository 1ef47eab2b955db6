"""Fixtures for the tenant bot: a Telegram emulator, a tenant data plane, a running bot.

The bot runs for real: aiogram long-polling the in-process emulator over HTTP, PostgreSQL as the
tenant's own role and Redis as the tenant's ACL user, so every test also proves the bot needs no
more than tenant privileges. Time is an injected clock fixed in 2030 (a Monday morning in Moscow).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from fleet.data_plane import (
    TenantNames,
    drop_database_plane,
    drop_redis_user,
    ensure_database_plane,
    ensure_redis_user,
)
from sandbox.telegram import RateLimits, TelegramEmulator, TelegramSandbox, TelegramUser
from schemas.runtime import TenantRuntime
from tenant_bot.app import run
from tenant_bot.booking import BookingCore, WorkInterval
from tenant_bot.resources import BotResources

START = datetime(2030, 1, 7, 6, 0, tzinfo=UTC)  # Monday 09:00 in Moscow


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Tenant:
    """A provisioned tenant: names, credentials, an owner user and a seeded catalogue."""

    names: TenantNames
    database_url: str
    redis_url: str
    core: BookingCore
    service_id: int = 0
    staff_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    # Flood control off: scripted users tap faster than people (tests that want it turn it on).
    async with TelegramEmulator.start(rate_limits=RateLimits.disabled()) as tg:
        yield tg


@pytest.fixture
async def sandbox(emulator: TelegramEmulator) -> AsyncIterator[TelegramSandbox]:
    async with TelegramSandbox(emulator.base_url) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tenant(
    request: pytest.FixtureRequest,
    database_url: str,
    redis: Redis,
    redis_url: str,
    unique_slug: str,
    role_prefix: str,
    clock: FakeClock,
) -> AsyncIterator[Tenant]:
    """The tenant's role, schema, migrations and Redis ACL user; one service and one staff member
    working 10:00-18:00 every day (``@pytest.mark.parametrize("tenant", ["bare"], indirect=True)``:
    a business just bought, with neither). Dropped afterwards."""
    names = TenantNames.of(unique_slug, role_prefix)
    password = secrets.token_hex(12)
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_database_plane(conn, names, password=password)
    finally:
        await conn.close()
    await ensure_redis_user(redis, names, password=password)
    tenant_db = (
        f"postgresql://{names.role}:{password}@127.0.0.1:5432/{database_url.rsplit('/', 1)[1]}"
    )
    host = redis_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    tenant_redis = f"redis://{names.redis_user}:{password}@{host}/0"
    pool = await asyncpg.create_pool(tenant_db, min_size=1, max_size=3)
    core = BookingCore(pool, clock=clock)
    await core.catalogue.update_settings(
        business_name="Barber <Ivan>", address="Tverskaya 1", time_zone="Europe/Moscow"
    )
    seeded = Tenant(names, tenant_db, tenant_redis, core)
    if getattr(request, "param", "seeded") != "bare":
        service = await core.catalogue.create_service(
            name="Haircut", duration_minutes=60, price=1500
        )
        staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
        for weekday in range(7):
            await core.catalogue.set_working_hours(
                staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
            )
        seeded.service_id, seeded.staff_id = service.id, staff.id
    try:
        yield seeded
    finally:
        await pool.close()
        conn = await asyncpg.connect(database_url)
        try:
            await drop_database_plane(conn, names)
        finally:
            await conn.close()
        await drop_redis_user(redis, names)


@dataclass
class RunningBot:
    """A tenant bot running in this process, and the sandbox users around it."""

    runtime: TenantRuntime
    resources: BotResources
    sandbox: TelegramSandbox
    owner: TelegramUser
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def bot_id(self) -> int:
        return self.resources.me.id

    async def customer(self, name: str = "Anna", **fields: Any) -> TelegramUser:
        return await self.sandbox.user(bot_id=self.bot_id, first_name=name, **fields)

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)


StartBot = Callable[..., Any]


@pytest.fixture
async def start_bot(
    tenant: Tenant, emulator: TelegramEmulator, sandbox: TelegramSandbox, clock: FakeClock
) -> AsyncIterator[StartBot]:
    """``await start_bot(**run_kwargs)`` starts a bot (the same token each time, so a second call
    after ``shutdown()`` is a restart); everything is stopped at the end of the test."""
    bot_id = 7_000_000_000 + secrets.randbelow(10**8)
    token = f"{bot_id}:{secrets.token_urlsafe(30)[:35].replace('-', 'a')}"
    await sandbox.register_bot(token, username=f"{tenant.names.slug}_bot")
    owner_account = await sandbox.create_user("Owner", language_code="en")
    running: list[RunningBot] = []

    async def start(**kwargs: Any) -> RunningBot:
        runtime = TenantRuntime(
            slug=tenant.names.slug,
            bot_token=token,
            database_url=tenant.database_url,
            redis_url=tenant.redis_url,
            redis_prefix=tenant.names.redis_prefix,
            owner_ids=[owner_account["id"]],
            locale="en",
            telegram_api_base=emulator.base_url,
            **kwargs.pop("runtime", {}),
        )
        ready: asyncio.Future[BotResources] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        kwargs.setdefault("rate_limit", (100, 10))
        task = asyncio.create_task(
            run(runtime, stop=stop, clock=clock, on_ready=ready.set_result, **kwargs)
        )
        done, _ = await asyncio.wait([ready, task], timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        resources = ready.result()
        handle = RunningBot(
            runtime,
            resources,
            sandbox,
            sandbox.as_user(bot_id=bot_id, user_id=owner_account["id"]),
            stop,
            task,
        )
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            handle.stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.task, timeout=15)
