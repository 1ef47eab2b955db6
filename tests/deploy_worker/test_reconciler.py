"""The reconciler heals drift: a killed bot comes back, a deleted tenant leaves nothing behind, an
instance of an unknown tenant is removed, a crash-looping bot marks its tenant degraded."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from typing import Any

import asyncpg
from redis.asyncio import Redis

from deploy_worker.reconciler import decide
from deploy_worker.runtimes.base import InstanceState, InstanceStatus, Runtime
from deploy_worker.service import WorkerParts
from fleet.data_plane import TenantNames, redis_user_exists
from fleet.lifecycle import TenantLifecycle
from fleet.settings import Settings
from tests.support.dw_helpers import tenant_row, wait_status, wait_until


async def _kill(runtime: Runtime, slug: str) -> None:
    """Kill the bot behind the runtime's back, the way a crash would."""
    status = await runtime.status(slug)
    if runtime.kind == "process":
        os.kill(int(status.instance_id or 0), signal.SIGKILL)
    else:
        client = runtime._client  # type: ignore[attr-defined]
        container = await asyncio.to_thread(client.containers.get, status.instance_id)
        # A stop is what the restart policy does not undo: only the reconciler brings it back.
        await asyncio.to_thread(container.stop, timeout=1)


async def test_killed_bot_is_restarted_by_the_reconciler(
    worker: WorkerParts, make_tenant: Any, wpool: asyncpg.Pool, runtime: Runtime, unique_slug: str
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    before = await runtime.status(unique_slug)

    if runtime.kind == "process":
        # The supervisor restarts a crashed child by itself, with backoff.
        await _kill(runtime, unique_slug)
        restarted = await wait_until(
            lambda: _running_with_new_id(runtime, unique_slug, before.instance_id),
            what="supervised restart",
        )
        assert restarted.restart_count == 1
        # A bot the runtime no longer supervises is the reconciler's to bring back.
        await runtime.stop(unique_slug)
        before = await runtime.status(unique_slug)
    else:
        await _kill(runtime, unique_slug)
    assert (await runtime.status(unique_slug)).state == InstanceState.STOPPED

    report = await worker.reconciler.run_once()
    assert report.enqueued[unique_slug].startswith("redeploy")
    await wait_until(
        lambda: _running_with_new_id(
            runtime, unique_slug, None if runtime.kind == "docker" else before.instance_id
        ),
        timeout=60,
        what="the reconciler's redeploy",
    )
    await wait_until(
        lambda: _job_done(wpool, tenant.id, "redeploy"), timeout=60, what="redeploy job done"
    )
    assert len(await runtime.list_by_label()) == 1
    assert (await runtime.status(unique_slug)).state == InstanceState.RUNNING


async def test_deprovision_removes_instance_schema_role_acl_user_and_keys(
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
    names = TenantNames.of(unique_slug, settings.tenant_role_prefix)
    await redis.set(f"{names.redis_prefix}fsm:1", "x")

    await TenantLifecycle(pool=wpool).request(unique_slug, "deprovision", actor="test")
    deleted = await wait_status(wpool, tenant.id, "deleted", runtime=runtime)
    assert deleted.deleted_at is not None

    assert (await runtime.status(unique_slug)).state == InstanceState.MISSING
    assert await runtime.list_by_label() == []
    assert not await wpool.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", names.schema)
    assert not await wpool.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", names.role)
    assert not await redis_user_exists(redis, names)
    assert [k async for k in redis.scan_iter(match=f"{names.redis_prefix}*")] == []
    kinds = [
        r["kind"]
        for r in await wpool.fetch(
            "SELECT kind FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant.id
        )
    ]
    assert kinds == ["tenant.live", "tenant.deleted"]
    deployment = await wpool.fetchrow(
        "SELECT status FROM control.deployments WHERE tenant_id = $1", tenant.id
    )
    assert deployment["status"] == "removed"


async def test_instance_of_an_unknown_tenant_is_removed(
    worker: WorkerParts, make_tenant: Any, wpool: asyncpg.Pool, runtime: Runtime, unique_slug: str
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    row = await tenant_row(wpool, tenant.id)
    # An instance labelled for a tenant this installation does not know (e.g. left by a crash).
    orphan = "orphan" + unique_slug[1:8]
    spec = worker.specs.build(
        replace(row, slug=orphan), worker.tenants.secrets_of(row), worker.tenants.names(orphan)
    )
    await runtime.ensure(spec)
    assert {i.slug for i in await runtime.list_by_label()} == {unique_slug, orphan}

    report = await worker.reconciler.run_once()
    assert report.orphans_removed == [orphan]
    assert (await runtime.status(orphan)).state == InstanceState.MISSING
    assert (await runtime.status(unique_slug)).state == InstanceState.RUNNING
    assert report.enqueued == {}


async def test_crash_looping_bot_marks_the_tenant_degraded(
    worker: WorkerParts, make_tenant: Any, wpool: asyncpg.Pool, runtime: Runtime, unique_slug: str
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)
    await worker.reconciler.run_once()
    # Restarts the runtime reports (as a crash-looping bot would) past the threshold (3 here).
    await wpool.execute(
        "UPDATE control.deployments SET restart_count = 0 WHERE tenant_id = $1", tenant.id
    )
    real_status = runtime.status
    real_list = runtime.list_by_label

    async def looping_list(labels: dict[str, str] | None = None) -> list[InstanceStatus]:
        return [
            InstanceStatus(**{**i.__dict__, "restart_count": 4}) if i.slug == unique_slug else i
            for i in await real_list(labels)
        ]

    runtime.list_by_label = looping_list  # type: ignore[method-assign]
    try:
        report = await worker.reconciler.run_once()
    finally:
        runtime.list_by_label = real_list  # type: ignore[method-assign]
        runtime.status = real_status  # type: ignore[method-assign]
    assert report.degraded == [unique_slug]
    degraded = await wait_status(wpool, tenant.id, "degraded")
    assert "crash loop" in degraded.status_reason
    kinds = [
        r["kind"]
        for r in await wpool.fetch(
            "SELECT kind FROM control.events WHERE tenant_id = $1 ORDER BY id", tenant.id
        )
    ]
    assert kinds == ["tenant.live", "tenant.degraded"]


def test_decisions() -> None:
    running = InstanceStatus(slug="abc", state=InstanceState.RUNNING, spec_hash="h1")
    stopped = InstanceStatus(slug="abc", state=InstanceState.STOPPED, spec_hash="h1")
    assert decide("active", "running", running, expected_hash="h1") is None
    assert decide("active", "running", running, expected_hash="h2").kind == "redeploy"  # type: ignore[union-attr]
    assert decide("active", "running", stopped, expected_hash="h1").kind == "redeploy"  # type: ignore[union-attr]
    assert decide("active", "running", None, expected_hash="h1").kind == "redeploy"  # type: ignore[union-attr]
    assert decide("active", "running", running, expected_hash="h1", silent=True).force  # type: ignore[union-attr]
    assert decide("active", "stopped", running, expected_hash=None).kind == "suspend"  # type: ignore[union-attr]
    assert decide("suspended", "stopped", stopped, expected_hash=None) is None
    assert decide("error", "running", None, expected_hash=None) is None
    assert decide("provisioning", "running", None, expected_hash=None).kind == "provision"  # type: ignore[union-attr]
    assert decide("deleting", "deleted", running, expected_hash=None).kind == "deprovision"  # type: ignore[union-attr]


async def _running_with_new_id(
    runtime: Runtime, slug: str, old_id: str | None
) -> InstanceStatus | None:
    status = await runtime.status(slug)
    if status.state == InstanceState.RUNNING and (old_id is None or status.instance_id != old_id):
        return status
    return None


async def _job_done(pool: asyncpg.Pool, tenant_id: int, kind: str) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT 1 FROM control.jobs WHERE tenant_id = $1 AND kind = $2 AND status = 'done'",
            tenant_id,
            kind,
        )
    )
