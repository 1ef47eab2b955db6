"""Operators see capacity (issue 17): the worker's reconciler measures a real running tenant bot on
the process runtime (host, RSS and USS from ``/proc``) and stores it in Redis; ``botfleet fleet
status`` and the API's ``/metrics`` show it with PostgreSQL's connections against the pooled bound."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from control_plane.app import create_app
from deploy_worker.runtimes.base import Runtime
from deploy_worker.runtimes.docker import container_memory
from deploy_worker.service import WorkerParts
from fleet.capacity import capacity_key
from fleet.settings import Settings
from kit.memory_merge import read_ksm
from tests.deploy_worker.test_cli import _botfleet
from tests.support.api_support import client_for
from tests.support.dw_helpers import tenant_row, wait_status


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the series ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    raise AssertionError(f"no {name}{labels} in /metrics")


@pytest.mark.slow  # live bots, the worker and the API: ~8 s
@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_fleet_status_and_metrics_show_capacity(
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
    host = socket.gethostname()

    report = await worker.reconciler.run_once()
    assert report.measured is not None, report.errors
    [bot] = report.measured.bots
    assert (bot.slug, bot.host) == (unique_slug, host)
    assert bot.rss_bytes is not None and bot.uss_bytes is not None
    assert 0 < bot.uss_bytes < bot.rss_bytes
    assert await redis.ttl(capacity_key(settings.tenant_role_prefix)) > 0

    # A connection of the tenant's own role counts as a tenant connection.
    row = await tenant_row(wpool, tenant.id)
    contract = worker.specs.runtime_contract(
        row, worker.tenants.secrets_of(row), worker.tenants.names(unique_slug)
    )
    tenant_conn = await asyncpg.connect(contract.database_url.get_secret_value())
    try:
        code, out, err = await _botfleet(settings, "fleet", "status", "--json")
        assert code == 0, err
        status = json.loads(out)
        [view] = status["tenants"]
        assert view["host"] == host
        assert view["rss_bytes"] > 0 and view["uss_bytes"] > 0
        capacity = status["capacity"]
        assert capacity["live_per_host"] == {host: 1}
        postgres = capacity["postgres"]
        assert postgres["tenant_connections"] >= 1
        assert postgres["server_connections"] > postgres["tenant_connections"]
        assert postgres["max_connections"] > 0
        assert (postgres["pool_max_per_tenant"], postgres["pooled_max"]) == (5, 5)

        code, out, err = await _botfleet(settings, "fleet", "status")
        assert code == 0, err
        assert f"live bots per host: {host} 1 " in out
        assert "memory per bot (USS): mean " in out and "memory per bot (RSS): mean " in out
        assert re.search(r"postgres: [1-9]\d* tenant connections, \d+ server connections of", out)
        assert "the live bots' pools may open 5 (5 x 1 live)" in out

        app = create_app(settings, pool=wpool, redis=redis)
        async with app.router.lifespan_context(app), client_for(app) as client:
            text = (await client.get("/metrics")).text
    finally:
        await tenant_conn.close()
    assert _sample(text, "botfleet_tenant_bots_live", host=host) == 1
    uss = _sample(text, "botfleet_tenant_bot_memory_bytes", tenant=unique_slug, kind="uss")
    rss = _sample(text, "botfleet_tenant_bot_memory_bytes", tenant=unique_slug, kind="rss")
    assert 0 < uss < rss
    assert _sample(text, "botfleet_tenant_pools_max_connections") == 5
    # bots connect directly: no pooler figures (tests/deploy_worker/test_pooler_capacity.py has them)
    assert status["capacity"]["pooler"] is None and "via pgbouncer" not in out
    assert _sample(text, "botfleet_pooler_waiting_clients") == -1
    assert _sample(text, "botfleet_pooler_server_connections") == -1
    assert _sample(text, "botfleet_postgres_tenant_connections") >= 1
    assert _sample(text, "botfleet_postgres_max_connections") > 0
    assert 0 <= _sample(text, "botfleet_capacity_measurement_age_seconds") < 60
    # kernel same-page merging on this host, where the kernel has it (kit/memory_merge.py)
    ksm = read_ksm()
    if ksm is not None:
        merging = status["capacity"]["memory_merge"]
        assert merging["host"] == host
        assert merging["ksmd_running"] is (ksm["run"] == 1)
        assert f"memory merging (KSM) on {host}: " in out
        assert _sample(text, "botfleet_ksm_running", host=host) == ksm["run"]
        assert _sample(text, "botfleet_ksm_pages", host=host, kind="sharing") >= 0
        assert _sample(text, "botfleet_ksm_general_profit_bytes", host=host) is not None
        assert _sample(text, "botfleet_tenant_memory_merge", host=host) in (-1, 0, 1)
    else:
        assert status["capacity"]["memory_merge"] is None


@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_no_measurement_is_said(
    wpool: asyncpg.Pool, redis: Redis, settings: Settings
) -> None:
    """Without a worker's measurement the status says so and /metrics shows age -1, not stale
    figures."""
    await redis.delete(capacity_key(settings.tenant_role_prefix))
    code, out, err = await _botfleet(settings, "fleet", "status")
    assert code == 0, err
    assert "capacity: no measurement from a worker lately" in out
    app = create_app(settings, pool=wpool, redis=redis)
    async with app.router.lifespan_context(app), client_for(app) as client:
        text = (await client.get("/metrics")).text
    assert _sample(text, "botfleet_capacity_measurement_age_seconds") == -1
    assert "botfleet_tenant_bots_live{" not in text


class _EngineAPI:
    """The engine's stats answer for one container (the docker SDK's low-level client's shape)."""

    def __init__(self, version: str, stats: dict[str, Any]) -> None:
        self._version = version
        self._stats = stats
        self.calls: list[dict[str, Any]] = []

    def stats(self, container_id: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"id": container_id, **kwargs})
        return self._stats


class _Engine:
    def __init__(self, api: _EngineAPI) -> None:
        self.api = api


def test_container_memory_counts_as_docker_stats_does() -> None:
    """Usage less the inactive page cache (cgroup v2 and v1), one-shot where the API allows it."""
    v2 = _EngineAPI(
        "1.43", {"memory_stats": {"usage": 150_000_000, "stats": {"inactive_file": 18_000_000}}}
    )
    assert container_memory(_Engine(v2), "c1") == 132_000_000
    assert v2.calls == [{"id": "c1", "stream": False, "one_shot": True}]
    v1 = _EngineAPI("1.40", {"memory_stats": {"usage": 90, "stats": {"total_inactive_file": 30}}})
    assert container_memory(_Engine(v1), "c2") == 60
    assert v1.calls == [{"id": "c2", "stream": False}]
    assert container_memory(_Engine(_EngineAPI("1.43", {"memory_stats": {}})), "c3") is None
