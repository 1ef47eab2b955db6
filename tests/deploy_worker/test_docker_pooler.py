"""``botfleet up``'s PgBouncer on the docker runtime (issue 17): the pooler listens on 127.0.0.1, a
tenant container on a bridge network reaches it as ``host.docker.internal:<port>`` through the
runtime's loopback relay, and a customer books through it (transaction mode, the bot's statement
cache off)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedPgBouncer, start_pooler
from deploy_worker.runtimes.base import Runtime
from deploy_worker.runtimes.docker import HOST_ALIAS
from deploy_worker.service import WorkerParts
from deploy_worker.spec import SECRETS_DIR
from fleet.pooler import drop_auth_lookup
from fleet.pooler_stats import read_pooler_figures
from fleet.settings import Settings
from sandbox.telegram import TelegramSandbox
from tenant_bot.booking import BookingCore
from tests.support.booking_helpers import seed_barber
from tests.support.dw_helpers import wait_status
from tests.support.pgbouncer import MISSING, pooler_folder

ZONE = ZoneInfo("Europe/Moscow")
pytestmark = [pytest.mark.docker, pytest.mark.parametrize("runtime_kind", ["docker"])]


@pytest.fixture
async def settings(  # the conftest's, with `up`'s pooler started for the docker runtime
    make_settings: Callable[..., Settings],
    docker_engine: Any,
    role_prefix: str,
    control_db: str,
) -> AsyncIterator[Settings]:
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    network = f"{role_prefix}net"
    base = make_settings(tenant_network=network)
    try:
        async with contextlib.AsyncExitStack() as exits:
            data = exits.enter_context(pooler_folder())
            pooled, line = await start_pooler(base, data, exits, auth_user=role_prefix + "pooler")
            assert pooled.tenant_database_pooler, line
            port = pooled.tenant_database_port
            assert line.startswith(f"{HOST_ALIAS}:{port} (relayed to 127.0.0.1:{port})"), line
            yield pooled
    finally:
        conn = await asyncpg.connect(control_db)
        try:
            await drop_auth_lookup(conn, auth_user=role_prefix + "pooler")
        finally:
            await conn.close()
        for net in await asyncio.to_thread(docker_engine.networks.list, names=[network]):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(net.remove)


async def _seed(database_url: str, schema: str, customer: int) -> None:
    """One service, one staff member 10:00-18:00 every day, the customer registered (as the
    platform's admin)."""
    pool = await asyncpg.create_pool(
        database_url, min_size=0, max_size=1, server_settings={"search_path": schema}
    )
    try:
        await seed_barber(
            BookingCore(pool), business="Pooled", customer_id=customer, customer_name="Pia"
        )
    finally:
        await pool.close()


def _labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in message["inline_keyboard"] or [] for b in row]


async def test_a_docker_bot_books_through_up_s_pooler(
    runtime_kind: str,
    docker_engine: Any,
    settings: Settings,
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    runtime: Runtime,
    telegram_sandbox: TelegramSandbox,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug, owner=777601)
    await wait_status(wpool, tenant.id, "active", timeout=120, runtime=runtime)
    names = worker.tenants.names(unique_slug)
    user = await telegram_sandbox.user(bot_id=int(tenant.bot_id), first_name="Pia")
    await _seed(settings.require("database_url"), names.schema, user.id)

    # The container's database URL names the pooler behind the relay, not PostgreSQL.
    status = await runtime.status(unique_slug)
    container = await asyncio.to_thread(docker_engine.containers.get, status.instance_id)
    code, out = await asyncio.to_thread(container.exec_run, ["cat", f"{SECRETS_DIR}/database_url"])
    assert code == 0
    url = urlsplit(out.decode().strip())
    assert (url.hostname, url.port) == (HOST_ALIAS, settings.tenant_database_port)
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["BOTFLEET_TENANT_DB_TRANSACTION_POOLER"] == "True"

    # A customer books: /book -> the service -> tomorrow -> 10:00 -> Confirm.
    await user.send("/start")
    await user.wait_for_change(timeout=30)
    await user.send("/book")
    menu = await user.wait_for_bot_message(
        lambda m: any(x.startswith("Haircut") for x in _labels(m)), timeout=30
    )
    await user.click(next(x for x in _labels(menu) if x.startswith("Haircut")))
    await user.wait_for_bot_message(lambda m: "▶" in _labels(m), timeout=30)
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)
    if tomorrow.month != today.month:
        await user.click("▶")
        await user.wait_for_bot_message(lambda m: "1" in _labels(m), timeout=30)
    await user.click(str(tomorrow.day))
    await user.wait_for_bot_message(lambda m: "10:00" in _labels(m), timeout=30)
    await user.click("10:00")
    await user.wait_for_bot_message(lambda m: "✅ Confirm" in _labels(m), timeout=30)
    await user.click("✅ Confirm")
    await user.wait_for_bot_message(
        lambda m: bool(m.get("document")) or "You are booked" in (m["text"] or ""), timeout=30
    )
    # The bot's connection is one of PgBouncer's clients; the booking is in the tenant's schema.
    assert settings.pooler_stats_url is not None
    figures = await read_pooler_figures(settings.pooler_stats_url.get_secret_value())
    assert figures.client_connections >= 1 and figures.server_connections_max == 40
    booked = await wpool.fetchval(
        f"SELECT count(*) FROM \"{names.schema}\".bookings WHERE status IN ('pending', 'confirmed')"
    )
    assert booked == 1
