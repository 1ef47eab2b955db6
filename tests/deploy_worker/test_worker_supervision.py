"""The worker's background loops are supervised and visible, and a poison job hurts nobody.

- A reconciler whose passes raise is restarted with backoff and counted; once it keeps failing the
  worker's ``/readyz`` (served as ``botfleet worker`` serves it) answers 503 naming it, while jobs are
  still claimed and run.
- A job that cannot run as written (a payload that fails validation, a payload that is not an object)
  is logged once with its id and kind, counted, parked as dead at once without touching its tenant,
  and neither the tenant's next job nor other tenants' jobs wait for it. A job whose handler raises
  something unexpected is retried with backoff, again without holding up other tenants.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from deploy_worker.handlers import JobHandler, parse_job
from deploy_worker.runtimes.base import Runtime
from deploy_worker.service import open_worker
from deploy_worker.worker import MalformedJob, Worker, WorkerCollector
from fleet.secrets import SecretBox
from fleet.settings import Settings
from kit.checks import postgres_probe, redis_probe
from kit.health_server import HealthServer
from kit.supervisor import Supervisor
from tests.support.dw_helpers import wait_until


@pytest.fixture
def runtime_kind() -> str:
    """These tests never start a bot: the process runtime is enough."""
    return "process"


class ExplodingReconciler:
    """A reconciler whose every pass raises, as a bug in a pass would."""

    def __init__(self) -> None:
        self.passes = 0

    async def run_once(self) -> None:
        self.passes += 1
        raise RuntimeError(f"reconcile pass {self.passes} hit a bug")


class FailsForTenant:
    """The real job handler, except that jobs of one tenant raise an unexpected error."""

    def __init__(self, real: JobHandler, *, tenant_id: int) -> None:
        self._real = real
        self._tenant_id = tenant_id

    async def run(self, job: Mapping[str, Any]) -> str:
        if job["tenant_id"] == self._tenant_id:
            raise ZeroDivisionError("a bug in a handler")
        return await self._real.run(job)

    async def failed(
        self, job: Mapping[str, Any], error: str, *, final: bool, permanent: bool
    ) -> None:
        await self._real.failed(job, error, final=final, permanent=permanent)


async def _enqueue(
    pool: asyncpg.Pool, kind: str, tenant_id: int | None, payload: Any = None
) -> int:
    """A job row as any producer (or a hand-written INSERT) could leave it."""
    return int(
        await pool.fetchval(
            "INSERT INTO control.jobs (kind, tenant_id, payload) VALUES ($1, $2, $3) RETURNING id",
            kind,
            tenant_id,
            {} if payload is None else payload,
        )
    )


async def _job(pool: asyncpg.Pool, job_id: int) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM control.jobs WHERE id = $1", job_id)
    assert row is not None
    return row


def _status_is(pool: asyncpg.Pool, job_id: int, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await _job(pool, job_id))["status"] == status

    return check


async def _stopped_tenant(make_tenant: Any, pool: asyncpg.Pool, slug: str) -> int:
    tenant = await make_tenant(slug)
    await pool.execute(
        "UPDATE control.tenants SET desired_state = 'stopped' WHERE id = $1", tenant.id
    )
    await pool.execute("DELETE FROM control.jobs WHERE tenant_id = $1", tenant.id)
    return int(tenant.id)


async def test_a_failing_reconciler_is_restarted_and_turns_the_worker_unready(
    settings: Settings,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reconciler = ExplodingReconciler()
    async with open_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=runtime
    ) as parts:
        worker = Worker(
            pool=wpool,
            handler=JobHandler(converger=parts.converger),
            reconciler=reconciler,
            poll_s=0.2,
            reconcile_interval_s=3600,
            supervisor=Supervisor("worker", backoff_initial=0.05, backoff_max=0.5),
        )
        health = HealthServer(
            supervisors=[worker.supervisor],
            probes={"postgres": postgres_probe(wpool), "redis": redis_probe(redis)},
        )
        health.registry.register(WorkerCollector(worker))
        running = asyncio.create_task(worker.run())
        try:
            async with (
                health.serving("127.0.0.1", 0),
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{health.port}", timeout=5) as client,
            ):

                async def failing() -> bool:
                    return not worker.supervisor.healthy

                with caplog.at_level(logging.ERROR, logger="kit.supervisor"):
                    await wait_until(failing, timeout=20, what="the reconciler to fail")
                ready = await client.get("/readyz")
                # The claim loop is unaffected: a job queued now still runs.
                job_id = await _enqueue(wpool, "suspend", None)
                await wait_until(_status_is(wpool, job_id, "done"), timeout=20)
                metrics = (await client.get("/metrics")).text
        finally:
            worker.stop()
            await asyncio.wait_for(running, 30)
    assert reconciler.passes >= 3  # restarted after each crash
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"]["postgres"]["ok"] and body["checks"]["redis"]["ok"]
    assert not body["checks"]["loops"]["ok"]
    assert (
        "worker/reconciler: failing (RuntimeError: reconcile pass"
        in (body["checks"]["loops"]["detail"])
    )
    assert body["loops"]["worker"]["jobs"]["healthy"]
    crashes = [r for r in caplog.records if r.getMessage() == "background loop crashed; restarting"]
    assert crashes and all(r.exc_info for r in crashes)
    assert 'botfleet_loop_healthy{loop="reconciler",process="worker"} 0.0' in metrics
    restarts = [
        line
        for line in metrics.splitlines()
        if line.startswith('botfleet_loop_restarts_total{loop="reconciler",process="worker"}')
    ]
    assert restarts and float(restarts[0].split()[-1]) >= 3
    assert 'botfleet_worker_jobs_total{kind="suspend",outcome="done"} 1.0' in metrics


async def test_malformed_jobs_are_parked_at_once_and_block_nobody(
    settings: Settings,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    make_tenant: Any,
    unique_slug: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await _stopped_tenant(make_tenant, wpool, unique_slug)
    other = await _stopped_tenant(make_tenant, wpool, unique_slug + "b")
    status_before = await wpool.fetchval("SELECT status FROM control.tenants WHERE id = $1", first)
    bad_payload = await _enqueue(wpool, "redeploy", first, {"force": "yes", "image": ""})
    not_an_object = await _enqueue(wpool, "suspend", first, [1, 2])
    after = await _enqueue(wpool, "suspend", first)
    others = await _enqueue(wpool, "suspend", other)

    with caplog.at_level(logging.INFO, logger="deploy_worker.worker"):
        async with open_worker(
            settings, pool=wpool, redis=redis, secrets=secret_box, runtime=runtime
        ) as parts:
            running = asyncio.create_task(parts.worker.run())
            try:
                for job_id in (after, others):
                    await wait_until(_status_is(wpool, job_id, "done"), timeout=30)
            finally:
                parts.worker.stop()
                await asyncio.wait_for(running, 30)

    for job_id, mentions in ((bad_payload, "force"), (not_an_object, "JSON object")):
        job = await _job(wpool, job_id)
        assert job["status"] == "dead", dict(job)
        assert job["attempts"] == 1  # parked at once: retrying the same row cannot help
        assert mentions in job["last_error"]
        failures = [
            r
            for r in caplog.records
            if r.getMessage() == "job failed" and getattr(r, "job_id", None) == job_id
        ]
        assert len(failures) == 1  # logged once, with its id and kind
        assert failures[0].kind == job["kind"]  # type: ignore[attr-defined]
        assert failures[0].levelno == logging.ERROR
    # The malformed jobs were the jobs' fault: the tenant was not failed or told anything.
    assert (
        await wpool.fetchval(
            "SELECT count(*) FROM control.events WHERE tenant_id = $1 AND kind = 'tenant.failed'",
            first,
        )
        == 0
    )
    assert status_before != "error"
    assert parts.worker.outcomes[("redeploy", "dead")] == 1
    assert parts.worker.outcomes[("suspend", "dead")] == 1
    assert parts.worker.outcomes[("suspend", "done")] == 2


async def test_an_unexpected_handler_error_is_retried_without_holding_up_others(
    settings: Settings,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    runtime: Runtime,
    make_tenant: Any,
    unique_slug: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = await _stopped_tenant(make_tenant, wpool, unique_slug)
    fine = await _stopped_tenant(make_tenant, wpool, unique_slug + "b")
    poison = await _enqueue(wpool, "suspend", broken)
    healthy = await _enqueue(wpool, "suspend", fine)
    with caplog.at_level(logging.WARNING, logger="deploy_worker.worker"):
        async with open_worker(
            settings, pool=wpool, redis=redis, secrets=secret_box, runtime=runtime
        ) as parts:
            worker = Worker(
                pool=wpool,
                handler=FailsForTenant(JobHandler(converger=parts.converger), tenant_id=broken),
                poll_s=0.2,
            )
            running = asyncio.create_task(worker.run())
            try:
                await wait_until(_status_is(wpool, healthy, "done"), timeout=30)

                async def retried() -> asyncpg.Record | None:
                    job = await _job(wpool, poison)
                    return job if job["status"] == "queued" and job["attempts"] >= 1 else None

                job = await wait_until(retried, timeout=30)
            finally:
                worker.stop()
                await asyncio.wait_for(running, 30)
    assert "ZeroDivisionError" in job["last_error"] or "a bug in a handler" in job["last_error"]
    assert job["run_after"] > job["updated_at"]  # backoff before the next attempt
    failures = [
        r
        for r in caplog.records
        if r.getMessage() == "job failed" and getattr(r, "job_id", None) == poison
    ]
    assert failures and failures[0].levelno == logging.WARNING
    assert failures[0].exc_info is not None  # an unexpected error comes with its traceback
    assert worker.outcomes[("suspend", "retry")] >= 1
    assert worker.outcomes[("suspend", "done")] == 1


def test_unknown_kinds_and_invalid_payloads_are_malformed() -> None:
    with pytest.raises(MalformedJob, match="unknown job kind 'migrate'"):
        parse_job({"kind": "migrate", "payload": {}})
    with pytest.raises(MalformedJob, match="force"):
        parse_job({"kind": "redeploy", "payload": {"force": 1}})
    with pytest.raises(MalformedJob, match="JSON object"):
        parse_job({"kind": "redeploy", "payload": "botfleet:2"})
    parsed = parse_job(
        {"kind": "redeploy", "payload": {"image": "botfleet:2", "force": True, "source": "cli"}}
    )
    assert parsed.image == "botfleet:2" and parsed.force
