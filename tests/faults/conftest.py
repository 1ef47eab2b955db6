"""Fixtures of the fault suite: a private PostgreSQL cluster and Redis server on spare ports, and a
``botfleet up`` on them with one paid, running tenant whose catalogue is ready for customers (its bot
behind ``up``'s PgBouncer where pgbouncer is installed, as in production).

Everything here is session-scoped (starting the platform and buying a bot is the expensive part) and
torn down at the end whatever happened: the ``up`` process group and its forked tenant bots are killed,
both servers stopped and their folder removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from cli.embedded import EmbeddedPgBouncer
from sandbox.telegram import TelegramSandbox
from tests.support.e2e_support import (
    AdminApi,
    UpProcess,
    bot_id_of,
    buy_bot,
    clean_env,
    press_pay,
    sales_bot_id,
)
from tests.support.fault_support import (
    FaultPlatform,
    FaultServers,
    PrivatePostgres,
    PrivateRedis,
    free_port,
    missing_binaries,
)


def _zone_near_midday(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now, so "today" has free times all test long."""
    offset = 12 - now.astimezone(UTC).hour  # -11 .. +12
    if offset == 0:
        return "Etc/UTC"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX sign: Etc/GMT-3 is UTC+3


async def _seed_catalogue(database_url: str, schema: str, zone: str) -> None:
    """The owner's catalogue as the owner would set it in /admin: one 30-minute service, one staff
    member working round the clock, a 5-minute grid, no minimum notice (so a booking can start in a
    few minutes and its reminder fall due while a dependency is away)."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE settings SET time_zone = $1, slot_step_minutes = 5, min_notice_minutes = 0,"
                " cancel_notice_minutes = 0, reschedule_notice_minutes = 0,"
                " max_active_per_customer = 10, default_locale = 'en'",
                zone,
            )
            service_id = await conn.fetchval(
                "INSERT INTO services (name, duration_minutes, price) VALUES ('Haircut', 30, 1500)"
                " RETURNING id"
            )
            staff_id = await conn.fetchval("INSERT INTO staff (name) VALUES ('Ivan') RETURNING id")
            await conn.execute(
                "INSERT INTO staff_services (staff_id, service_id) VALUES ($1, $2)",
                staff_id,
                service_id,
            )
            await conn.executemany(
                "INSERT INTO working_hours (staff_id, weekday, start_minute, end_minute)"
                " VALUES ($1, $2, 0, 1440)",
                [(staff_id, day) for day in range(7)],
            )
    finally:
        await conn.close()


def pooler_mode() -> str:
    """``BOTFLEET_POOLER`` of the suite's ``up``: ``auto`` (PgBouncer where installed) unless
    ``BOTFLEET_FAULTS_POOLER`` says otherwise."""
    return os.environ.get("BOTFLEET_FAULTS_POOLER", "auto")


@pytest.fixture(scope="session")
def fault_servers() -> Iterator[FaultServers]:
    """PostgreSQL 15 and Redis 7 of this suite alone, on spare ports, in a temporary folder."""
    if reason := missing_binaries():
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="bf-faults-"))
    root.chmod(0o755)  # the postgres OS user must reach its folder
    postgres = PrivatePostgres(root / "pg")
    redis = PrivateRedis(root / "redis")
    try:
        postgres.init()
        postgres.start()
        redis.start()

        async def create_database() -> None:
            conn = await asyncpg.connect(postgres.url())
            try:
                await conn.execute('CREATE DATABASE "botfleet"')
            finally:
                await conn.close()

        asyncio.run(create_database())
        yield FaultServers(postgres=postgres, redis=redis, root=root)
    finally:
        with contextlib.suppress(Exception):
            redis.stop()
        with contextlib.suppress(Exception):
            postgres.stop("immediate")
        if os.environ.get("BOTFLEET_FAULTS_KEEP"):  # to read the servers' and bots' logs
            print(f"fault suite folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_platform(fault_servers: FaultServers) -> Iterator[FaultPlatform]:
    """``botfleet up`` on the private servers; an owner has bought and paid a bot, the worker runs
    it, and its catalogue is set up. Killed (with its tenant bots) at the end of the session."""
    work = fault_servers.root / "up"
    work.mkdir()
    env = clean_env(
        BOTFLEET_DATABASE_URL=fault_servers.database_url,
        BOTFLEET_REDIS_URL=fault_servers.redis.url,
        BOTFLEET_RUNTIME="process",
        # Bots reach PostgreSQL as `up` runs them: through its PgBouncer where pgbouncer is
        # installed (BOTFLEET_FAULTS_POOLER=off runs them direct, to compare the two).
        BOTFLEET_POOLER=pooler_mode(),
        BOTFLEET_SALES_OUTBOX_INTERVAL_S="0.3",
        BOTFLEET_WORKER_POLL_S="0.5",
        BOTFLEET_STOP_TIMEOUT_S="3",
        BOTFLEET_WORKER_SHUTDOWN_S="5",
        # the periodic loops run several times during an outage, as they would in production
        BOTFLEET_RECONCILE_INTERVAL_S="3",
        BOTFLEET_BILLING_LIFECYCLE_INTERVAL_S="2",
    )
    up = UpProcess(cwd=work, env=env, logs=work / "logs", port=free_port(), data_dir=work / "data")

    async def start() -> FaultPlatform:
        banner = await up.start()
        token, *spare = banner.tokens
        bot_id = bot_id_of(token)
        api = AdminApi(banner.api_url, banner.admin_key)
        try:
            async with TelegramSandbox(banner.emulator_url) as sandbox:
                sales_id = await sales_bot_id(sandbox)
                owner = await sandbox.user(bot_id=sales_id, first_name="Olga", language_code="en")
                await press_pay(await buy_bot(owner, token=token, business="Olga's Salon"))
            tenant = await _until_tenant(api, bot_id)
            slug = tenant["slug"]
            await api.wait_deployment(slug, timeout=60)
        finally:
            await api.aclose()
        schema = f"tenant_{slug}"
        pooled = (work / "data" / "pgbouncer" / "pgbouncer.ini").exists()
        if pooler_mode() == "auto" and EmbeddedPgBouncer.binary() is not None:
            assert pooled, (
                f"pgbouncer is installed but `up` runs bots direct:\n{up.stderr_tail(30)}"
            )
        zone = _zone_near_midday(datetime.now(UTC))
        await _seed_catalogue(fault_servers.database_url, schema, zone)
        return FaultPlatform(
            servers=fault_servers,
            up=up,
            api_url=banner.api_url,
            admin_key=banner.admin_key,
            emulator_url=banner.emulator_url,
            spare_tokens=spare,
            owner_id=owner.id,
            sales_bot_id=sales_id,
            bot_id=bot_id,
            slug=slug,
            schema=schema,
            zone=zone,
            pooled=pooled,
        )

    try:
        platform = asyncio.run(start())
        yield platform
    finally:
        up.kill()


async def _until_tenant(api: AdminApi, bot_id: int) -> dict[str, object]:
    """The tenant of the bot once the payment made it active."""
    for _ in range(120):
        with contextlib.suppress(AssertionError):
            tenant = await api.tenant_of_bot(bot_id)
            if tenant["status"] == "active":
                return tenant
        await asyncio.sleep(0.5)
    raise AssertionError(f"the tenant of bot {bot_id} never became active")
