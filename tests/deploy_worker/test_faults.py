"""Fault injection: a worker SIGKILLed after any provisioning step, then a fresh worker — exactly one
instance, a fully migrated schema, no orphan. And two workers sharing 20 tenants never run a job twice."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.handlers import JobHandler
from deploy_worker.provisioning import STEPS
from deploy_worker.runtimes.base import InstanceState, Runtime
from fleet.migrations import load_migrations
from fleet.secrets import SecretBox
from fleet.settings import ENV_PREFIX, Settings
from tests.support.dw_helpers import running_worker, wait_status, wait_until

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _env_of(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, (list, dict)):
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[ENV_PREFIX + name.upper()] = str(value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


async def _schema_versions(pool: asyncpg.Pool, schema: str) -> list[str]:
    rows = await pool.fetch(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
    return [r["version"] for r in rows]


# The crash matrix: the worker killed after every step of provisioning (a fault matrix: `make test`
# and .ci/run run it, `make test-fast` leaves it out).
_CRASH_CASES = [pytest.param("process", step, marks=pytest.mark.faults) for step in STEPS] + [
    # the docker runtime at the steps that touch it (each case starts containers: seconds apiece)
    pytest.param("docker", step, marks=pytest.mark.docker)
    for step in ("data_plane", "runtime", "heartbeat")
]


@pytest.mark.parametrize(("runtime_kind", "step"), _CRASH_CASES, indirect=["runtime_kind"])
async def test_worker_killed_after_each_step_converges_on_restart(
    step: str,
    runtime_kind: str,
    make_settings: Any,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    unique_slug: str,
) -> None:
    settings = make_settings(worker_lease_s=2.0, worker_concurrency=2)
    tenant = await make_tenant(unique_slug)

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "support" / "crashing_worker.py"),
        env=_env_of(settings, CRASH_AFTER_STEP=step),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        code = await asyncio.wait_for(proc.wait(), 90)
    except TimeoutError:
        proc.kill()
        raise
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""  # type: ignore[union-attr]
    assert code == -9, f"the worker did not crash after {step} (exit {code}):\n{stderr[-3000:]}"
    job = await wpool.fetchrow("SELECT * FROM control.jobs WHERE tenant_id = $1", tenant.id)
    assert job["status"] == "running"  # held by a dead worker until its lease expires

    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=runtime
    ):
        await wait_status(wpool, tenant.id, "active", timeout=90, runtime=runtime)
        await wait_until(lambda: _job_status(wpool, tenant.id, "done"), timeout=30, what="job done")

    instances = await runtime.list_by_label()
    assert [(i.slug, i.state) for i in instances] == [(unique_slug, InstanceState.RUNNING)]
    schema = f"{settings.tenant_role_prefix}{unique_slug}"
    assert await _schema_versions(wpool, schema) == [m.version for m in load_migrations("tenant")]
    events = await wpool.fetch("SELECT kind FROM control.events WHERE tenant_id = $1", tenant.id)
    assert [e["kind"] for e in events] == ["tenant.live"]
    job = await wpool.fetchrow("SELECT * FROM control.jobs WHERE tenant_id = $1", tenant.id)
    assert job["status"] == "done" and job["attempts"] == 2
    if runtime_kind == "process":
        # The bot forked before the crash was adopted, not doubled: one state file, one process.
        state_dir = Path(settings.process_state_dir)
        assert len(await asyncio.to_thread(lambda: list(state_dir.glob("*.json")))) == 1
        markers = await asyncio.to_thread(lambda: list((state_dir / "spawned").glob("*.json")))
        assert len(markers) == 1


async def _job_status(pool: asyncpg.Pool, tenant_id: int, status: str) -> bool:
    found = await pool.fetchval("SELECT status FROM control.jobs WHERE tenant_id = $1", tenant_id)
    return bool(found == status)


class _Recorder:
    """Wraps a job handler and records overlapping runs of one job or one tenant."""

    def __init__(self, inner: JobHandler, shared: dict[str, Any]) -> None:
        self._inner = inner
        self._shared = shared

    async def run(self, job: Mapping[str, Any]) -> str:
        running_jobs: set[int] = self._shared["jobs"]
        running_tenants: set[int] = self._shared["tenants"]
        if job["id"] in running_jobs or job["tenant_id"] in running_tenants:
            self._shared["overlaps"].append(job["id"])
        running_jobs.add(job["id"])
        running_tenants.add(job["tenant_id"])
        self._shared["runs"].append(job["id"])
        try:
            return await self._inner.run(job)
        finally:
            running_jobs.discard(job["id"])
            running_tenants.discard(job["tenant_id"])

    async def failed(
        self, job: Mapping[str, Any], error: str, *, final: bool, permanent: bool
    ) -> None:
        await self._inner.failed(job, error, final=final, permanent=permanent)


async def test_two_workers_share_the_queue_without_running_a_job_twice(
    runtime_kind: str,
    make_settings: Any,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    control_db: str,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    unique_slug: str,
) -> None:
    from deploy_worker.runtimes import create_runtime
    from fleet.db import create_pool

    settings = make_settings(worker_concurrency=6, heartbeat_timeout_s=60.0)
    # The second worker has its own pool and, on docker, its own runtime (engine client); two
    # process runtimes on one host would supervise each other's bots, so they share one there.
    other_pool = await create_pool(control_db, max_size=10)
    other_runtime = (
        runtime
        if runtime_kind == "process"
        else await asyncio.to_thread(
            create_runtime, settings, namespace=settings.tenant_role_prefix
        )
    )
    shared: dict[str, Any] = {"jobs": set(), "tenants": set(), "overlaps": [], "runs": []}
    # 20 bots on the process runtime; 8 containers on docker keep the suite's time in bounds here
    # (a container pays aiogram's import, seconds on a shared 2-core host).
    count = 20 if runtime_kind == "process" else 8
    slugs = [f"{unique_slug[:10]}_{i:02d}" for i in range(count)]
    started = time.monotonic()
    try:
        async with (
            running_worker(
                settings,
                pool=wpool,
                redis=redis,
                secrets=secret_box,
                runtime=runtime,
                worker_id="w1",
            ) as one,
            running_worker(
                settings,
                pool=other_pool,
                redis=redis,
                secrets=secret_box,
                runtime=other_runtime,
                worker_id="w2",
            ) as two,
        ):
            for parts in (one, two):
                parts.worker._handler = _Recorder(parts.worker._handler, shared)  # type: ignore[arg-type,assignment]
            tenants = [await make_tenant(slug) for slug in slugs]
            for tenant in tenants:
                await wait_status(wpool, tenant.id, "active", timeout=150, runtime=runtime)
    finally:
        if other_runtime is not runtime:
            await other_runtime.close()
        await other_pool.close()
    elapsed = time.monotonic() - started

    assert shared["overlaps"] == []
    assert len(shared["runs"]) == len(set(shared["runs"])) == count, shared["runs"]
    done = await wpool.fetch("SELECT locked_by, attempts, status FROM control.jobs")
    assert {r["status"] for r in done} == {"done"} and {r["attempts"] for r in done} == {1}
    workers = await wpool.fetch("SELECT payload, request_id FROM control.jobs")
    assert len(workers) == count
    instances = await runtime.list_by_label()
    assert sorted(i.slug for i in instances) == sorted(slugs)
    assert all(i.state == InstanceState.RUNNING for i in instances)
    print(f"{count} tenants by two workers in {elapsed:.1f}s")
