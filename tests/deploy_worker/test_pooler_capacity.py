"""Operators see the pooler's capacity (issue 17): with tenant bots behind a real PgBouncer, the
worker reads its admin console each pass, and ``botfleet fleet status`` and ``/metrics`` show its
client connections, its server connections against its bound, and clients waiting for one."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedPgBouncer, free_port
from control_plane.app import create_app
from deploy_worker.runtimes.base import Runtime
from deploy_worker.service import WorkerParts
from fleet.data_plane import TenantNames, drop_database_plane, ensure_database_plane
from fleet.pooler_stats import PoolerStatsError, read_pooler_figures
from fleet.settings import Settings
from tests.deploy_worker.test_capacity import _sample
from tests.deploy_worker.test_cli import _botfleet
from tests.support.api_support import client_for
from tests.support.dw_helpers import tenant_row, wait_status
from tests.support.pgbouncer import MISSING, Pooler, running_pooler


async def _until(check: Callable[[], Any], *, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_the_console_counts_clients_servers_and_waiting(
    database_url: str, role_prefix: str
) -> None:
    """One server connection per tenant: a client holding a transaction keeps it, the next one
    waits inside PgBouncer and is counted as waiting until the first commits."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    names, password = TenantNames.of("stats", role_prefix), "pw-" + role_prefix
    admin = await asyncpg.connect(database_url)
    try:
        await ensure_database_plane(admin, names, password=password)
        async with running_pooler(
            database_url, max_server_connections=7, pool_per_tenant=1
        ) as pooler:
            idle = await read_pooler_figures(pooler.stats_url())
            assert (idle.client_connections, idle.waiting_clients) == (0, 0)
            assert idle.server_connections_max == 7
            url = pooler.url(names.role, password)
            holder = await asyncpg.connect(url, statement_cache_size=0)
            queued = await asyncpg.connect(url, statement_cache_size=0)
            try:
                transaction = holder.transaction()
                await transaction.start()
                await holder.execute("SELECT 1")
                waiting = asyncio.create_task(queued.fetchval("SELECT 2"))

                async def one_waits() -> bool:
                    return (await read_pooler_figures(pooler.stats_url())).waiting_clients == 1

                await _until(one_waits)
                busy = await read_pooler_figures(pooler.stats_url())
                # the tenant's one, and the login lookup's until it idles out: PostgreSQL sees both
                assert busy.client_connections == 2 and 1 <= busy.server_connections <= 2
                await transaction.commit()
                assert await waiting == 2

                async def none_waits() -> bool:
                    return (await read_pooler_figures(pooler.stats_url())).waiting_clients == 0

                await _until(none_waits)
            finally:
                await holder.close()
                await queued.close()
    finally:
        await drop_database_plane(admin, names)
        await admin.close()


async def test_a_wrong_password_or_no_pooler_is_a_clear_error(pgbouncer: Pooler) -> None:
    wrong = re.sub(r":[^:@]+@", ":wrong@", pgbouncer.stats_url())
    with pytest.raises(
        PoolerStatsError, match=r"refused the stats login as .*SASL authentication failed.*password"
    ):
        await read_pooler_figures(wrong)
    nobody = f"postgresql://u:p@127.0.0.1:{free_port(0)}/pgbouncer"
    with pytest.raises(PoolerStatsError, match="unreachable"):
        await read_pooler_figures(nobody)
    with pytest.raises(PoolerStatsError, match="must be postgresql://"):
        await read_pooler_figures("http://127.0.0.1/pgbouncer")


@pytest.fixture
async def tenant_pooler(control_db: str) -> AsyncIterator[Pooler]:
    """PgBouncer in front of this test's control database, where its tenants' schemas live."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    async with running_pooler(control_db, max_server_connections=6, pool_per_tenant=1) as pooler:
        yield pooler


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tenant_pooler: Pooler) -> Settings:
    """The worker's settings: tenant bots log in through the pooler, whose console it reads."""
    return make_settings(
        tenant_database_host=tenant_pooler.host,
        tenant_database_port=tenant_pooler.port,
        tenant_database_pooler=True,
        pooler_stats_url=tenant_pooler.stats_url(),
    )


@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_fleet_status_and_metrics_show_the_pooler(
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    runtime: Runtime,
    settings: Settings,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    row = await tenant_row(wpool, tenant.id)
    contract = worker.specs.runtime_contract(
        row, worker.tenants.secrets_of(row), worker.tenants.names(unique_slug)
    )
    url = contract.database_url.get_secret_value()
    assert f":{settings.tenant_database_port}/" in url  # the bot's own URL is the pooler's
    holder = await asyncpg.connect(url, statement_cache_size=0)
    queued = await asyncpg.connect(url, statement_cache_size=0)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1")
        waiting = asyncio.create_task(queued.fetchval("SELECT 2"))
        await asyncio.sleep(0.3)
        report = await worker.reconciler.run_once()
        assert report.measured is not None and report.measured.pooler is not None, report.errors
        figures = report.measured.pooler
        assert figures.waiting_clients >= 1 and figures.client_connections >= 2
        assert 1 <= figures.server_connections <= 6 and figures.server_connections_max == 6

        code, out, err = await _botfleet(settings, "fleet", "status")
        assert code == 0, err
        assert re.search(
            r"PostgreSQL: [1-6] server connections \(bound 6\) for \d+ client connections via"
            r" pgbouncer; [1-9]\d* waiting",
            out,
        ), out
        assert "the live bots' pools may open" not in out  # the pooler bounds them instead
        code, out, err = await _botfleet(settings, "fleet", "status", "--json")
        assert code == 0, err
        pooler = json.loads(out)["capacity"]["pooler"]
        assert pooler["server_connections_max"] == 6 and pooler["waiting_clients"] >= 1

        app = create_app(settings, pool=wpool, redis=redis)
        async with app.router.lifespan_context(app), client_for(app) as client:
            text = (await client.get("/metrics")).text
        await transaction.commit()
        assert await waiting == 2
    finally:
        await holder.close()
        await queued.close()
    assert _sample(text, "botfleet_pooler_waiting_clients") >= 1
    assert _sample(text, "botfleet_pooler_client_connections") >= 2
    assert 1 <= _sample(text, "botfleet_pooler_server_connections") <= 6
    assert _sample(text, "botfleet_pooler_server_connections_max") == 6
    assert _sample(text, "botfleet_tenant_pools_max_connections") == 6
