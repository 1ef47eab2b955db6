"""The swarm runtime for real (``docker swarm init`` on this host): provision and reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.runtimes.base import InstanceState
from deploy_worker.runtimes.swarm import SwarmRuntime
from deploy_worker.spec import LABEL_SPEC_HASH, LABEL_TENANT
from fleet.secrets import SecretBox
from tests.support.dw_helpers import running_worker, wait_status, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def runtime_kind() -> str:
    return "swarm"


@pytest.fixture
async def swarm(swarm_engine: Any, role_prefix: str) -> AsyncIterator[SwarmRuntime]:
    runtime = SwarmRuntime(client=swarm_engine, namespace=role_prefix, restart_delay_s=0.5)
    yield runtime
    for instance in await runtime.list_by_label():
        await runtime.remove(instance.slug)


async def test_swarm_provision_and_reconcile(
    swarm: SwarmRuntime,
    make_settings: Any,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    unique_slug: str,
) -> None:
    settings = make_settings(runtime="swarm", heartbeat_timeout_s=60.0)
    tenant = await make_tenant(unique_slug)
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=swarm
    ) as parts:
        await wait_status(wpool, tenant.id, "active", timeout=120, runtime=swarm)
        status = await swarm.status(unique_slug)
        assert status.state == InstanceState.RUNNING
        service = await asyncio.to_thread(swarm._client.services.get, status.instance_id)
        spec = service.attrs["Spec"]
        assert spec["Labels"][LABEL_TENANT] == unique_slug
        assert spec["Labels"][LABEL_SPEC_HASH] == status.spec_hash
        assert spec["Mode"]["Replicated"]["Replicas"] == 1
        limits = spec["TaskTemplate"]["Resources"]["Limits"]
        assert limits["MemoryBytes"] == settings.tenant_memory_mb * 1024 * 1024
        assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"

        # Drift: the service scaled to zero behind the worker's back; the reconciler restores it.
        await asyncio.to_thread(service.scale, 0)
        await wait_until(lambda: _state_is(swarm, unique_slug, InstanceState.STOPPED), timeout=30)
        report = await parts.reconciler.run_once()
        assert report.enqueued[unique_slug].startswith("redeploy")
        try:
            await wait_until(
                lambda: _state_is(swarm, unique_slug, InstanceState.RUNNING), timeout=90
            )
            await wait_until(lambda: _all_jobs_done(wpool, tenant.id), timeout=90)
        except AssertionError:
            jobs = await wpool.fetch("SELECT kind, status, last_error FROM control.jobs")
            raise AssertionError(f"jobs: {[dict(j) for j in jobs]}") from None
        assert [i.slug for i in await swarm.list_by_label()] == [unique_slug]


async def _state_is(runtime: SwarmRuntime, slug: str, state: InstanceState) -> bool:
    return (await runtime.status(slug)).state == state


async def _all_jobs_done(pool: asyncpg.Pool, tenant_id: int) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT bool_and(status = 'done') FROM control.jobs WHERE tenant_id = $1", tenant_id
        )
    )
