"""The swarm runtime's tenant services behind a real PgBouncer (issue 17): the worker hands every
service the pooler's address (``BOTFLEET_TENANT_DATABASE_HOST``/``_PORT``) and the pooled flag, so
three services on one swarm node answer and book while PostgreSQL sees only the pooler's server
connections, at most its bound of two."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedPgBouncer
from deploy_worker.runtimes.swarm import SwarmRuntime
from fleet.pooler_stats import read_pooler_figures
from fleet.secrets import SecretBox
from fleet.settings import Settings
from sandbox.telegram import TelegramSandbox, TelegramUser
from tenant_bot.booking import BookingCore, WorkInterval
from tests.support.dw_helpers import running_worker, tenant_row, wait_status
from tests.support.pgbouncer import MISSING, Pooler, running_pooler

pytestmark = pytest.mark.docker

BOUND = 2  # the pooler's max_db_connections: fewer than the three tenants
TENANTS = 3
# PostgreSQL may list a backend PgBouncer just closed (to lend the bound to another tenant's pool)
# for a moment beside its replacement, while its process exits (docs/SCALING.md).
EXITING_BACKENDS = 2
ZONE = ZoneInfo("Europe/Moscow")
SERVICE = "Haircut · "  # the button reads "Haircut · 1 h · 1 500 ₽"
SUMMARY_MARK = "check your booking"


@pytest.fixture
def runtime_kind() -> str:
    return "swarm"


@pytest.fixture
async def swarm(swarm_engine: Any, role_prefix: str) -> AsyncIterator[SwarmRuntime]:
    runtime = SwarmRuntime(client=swarm_engine, namespace=role_prefix, restart_delay_s=0.5)
    yield runtime
    for instance in await runtime.list_by_label():
        await runtime.remove(instance.slug)


@pytest.fixture
async def tenant_pooler(control_db: str) -> AsyncIterator[Pooler]:
    """PgBouncer in front of this test's control database (where its tenants' schemas live),
    bounded at two server connections, one per tenant at once; idle ones kept for a minute, so the
    connections PostgreSQL lists can be matched with the pooler's own list afterwards."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    async with running_pooler(
        control_db, max_server_connections=BOUND, pool_per_tenant=1, server_idle_s=60
    ) as pooler:
        yield pooler


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tenant_pooler: Pooler) -> Settings:
    """The swarm worker's settings: tenant services reach PostgreSQL only through the pooler (on
    the host network here: the services see the host's loopback, where the pooler listens)."""
    return make_settings(
        runtime="swarm",
        heartbeat_timeout_s=120.0,
        tenant_database_host=tenant_pooler.host,
        tenant_database_port=tenant_pooler.port,
        tenant_database_pooler=True,
        pooler_stats_url=tenant_pooler.stats_url(),
    )


@pytest.mark.slow  # three swarm services: ~1-2 min on 2 cores
async def test_swarm_services_book_through_the_pooler_within_its_bound(
    swarm: SwarmRuntime,
    swarm_engine: Any,
    settings: Settings,
    tenant_pooler: Pooler,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    telegram_sandbox: TelegramSandbox,
    control_db: str,
    role_prefix: str,
    unique_slug: str,
) -> None:
    slugs = [f"{unique_slug}{n}" for n in range(TENANTS)]
    tenants = [await make_tenant(slug, owner=777500 + n) for n, slug in enumerate(slugs)]
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=swarm
    ) as parts:
        rows = [
            await wait_status(wpool, t.id, "active", timeout=240, runtime=swarm) for t in tenants
        ]
        customers: list[TelegramUser] = []
        for row in rows:
            contract = parts.specs.runtime_contract(
                row, parts.tenants.secrets_of(row), parts.tenants.names(row.slug)
            )
            url = contract.database_url.get_secret_value()
            # the service's DATABASE_URL (a Docker secret) is the pooler's, and the bot is told so
            assert f"@{tenant_pooler.host}:{tenant_pooler.port}/" in url
            status = await swarm.status(row.slug)
            service = await asyncio.to_thread(swarm_engine.services.get, status.instance_id)
            spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            env = dict(item.split("=", 1) for item in spec["Env"])
            assert env["BOTFLEET_TENANT_DB_TRANSACTION_POOLER"] == "True"
            customer = await telegram_sandbox.user(bot_id=row.bot_id, first_name="Sw")
            await _seed(url, customer.id)
            customers.append(customer)

        watcher = await asyncpg.connect(control_db)
        peak = held = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak, held
            while sampling:
                peak = max(peak, await _tenant_backends(watcher, role_prefix))
                figures = await read_pooler_figures(tenant_pooler.stats_url())
                held = max(held, figures.server_connections)
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            answers = await asyncio.gather(*(c.ask("/start", timeout=60) for c in customers))
            assert all(a.get("text") for a in answers), answers
            finals = await asyncio.gather(*(_book(c) for c in customers))
        finally:
            sampling = False
            await sampler
        try:
            # booked: the confirmation, then its calendar file
            assert all(
                f.get("document") or "You are booked" in (f["text"] or "") for f in finals
            ), finals
            for row in rows:
                count = await watcher.fetchval(
                    f'SELECT count(*) FROM "{role_prefix}{row.slug}".bookings'
                )
                assert count == 1, (row.slug, count)
            # Every backend of a tenant role is one of the pooler's server connections (matched by
            # its port on PostgreSQL's side): no service reached PostgreSQL directly.
            backends = await watcher.fetch(
                "SELECT usename, client_port FROM pg_stat_activity"
                " WHERE starts_with(usename, $1) AND usename NOT LIKE '%\\_pooler'",
                role_prefix,
            )
        finally:
            await watcher.close()
        servers = await asyncio.to_thread(_pooler_server_ports, tenant_pooler)
        assert backends, "no tenant backend left to match"
        assert {b["client_port"] for b in backends} <= servers, (backends, servers)
        figures = await read_pooler_figures(tenant_pooler.stats_url())
        assert figures.server_connections_max == BOUND
        assert 0 < held <= BOUND, held
        assert 0 < peak <= BOUND + EXITING_BACKENDS, peak
        row = await tenant_row(wpool, tenants[0].id)
        assert row.status == "active"


async def _seed(url: str, customer: int) -> None:
    """One service, one staff member 10:00-18:00 every day and the customer registered, through the
    pooler as the tenant."""
    pool = await asyncpg.create_pool(url, statement_cache_size=0, min_size=0, max_size=1)
    try:
        core = BookingCore(pool)
        await core.catalogue.update_settings(
            business_name="Swarm barber", min_notice_minutes=0, time_zone="Europe/Moscow"
        )
        service = await core.catalogue.create_service(
            name="Haircut", duration_minutes=60, price=1500
        )
        staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
        for weekday in range(7):
            await core.catalogue.set_working_hours(
                staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
            )
        await core.customers.register(customer, name="Anna", phone="+79161234567", locale="en")
    finally:
        await pool.close()


def _labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for line in message["inline_keyboard"] or [] for b in line]


async def _book(user: TelegramUser) -> dict[str, Any]:
    """/book, the service, tomorrow, 10:00 (a registered customer: the summary next), Confirm."""
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)

    async def step(wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return await user.wait_for_bot_message(wanted, timeout=30)

    await user.send("/book")
    menu = await step(lambda m: any(x.startswith(SERVICE) for x in _labels(m)))
    await user.click(next(x for x in _labels(menu) if x.startswith(SERVICE)))
    await step(lambda m: "▶" in _labels(m))
    if tomorrow.month != today.month:
        await user.click("▶")
        await step(lambda m: "1" in _labels(m))
    await user.click(str(tomorrow.day))
    await step(lambda m: "10:00" in _labels(m))
    await user.click("10:00")
    await step(lambda m: SUMMARY_MARK in (m["text"] or ""))
    await user.click("✅ Confirm")
    return await step(lambda m: SUMMARY_MARK not in (m["text"] or ""))


async def _tenant_backends(conn: asyncpg.Connection, prefix: str) -> int:
    """PostgreSQL's backends logged in as this test's tenant roles."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename, $1)"
            " AND usename NOT LIKE '%\\_pooler'",
            prefix,
        )
    )


def _pooler_server_ports(pooler: Pooler) -> set[int]:
    """The local ports of the pooler's server connections (its console's ``SHOW SERVERS``)."""
    command = ["psql", "-X", "-A", "-F", "|", "-P", "footer=off", "-h", pooler.host]
    command += ["-p", str(pooler.port), "-U", pooler.bouncer.config.auth_user, "-d", "pgbouncer"]
    done = subprocess.run(
        [*command, "-c", "SHOW SERVERS"],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "PGPASSWORD": pooler.bouncer.auth_password},
        check=True,
    )
    header, *rows = done.stdout.splitlines()
    column = header.split("|").index("local_port")
    return {int(line.split("|")[column]) for line in rows if line.strip()}
