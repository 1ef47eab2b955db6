"""Provisioning end to end, on the process runtime always and on docker when an engine answers: the
bot runs with the right labels, environment and limits, reports ready, and answers /start through the
Telegram emulator; an unknown token fails the tenant at once without building anything."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from redis.asyncio import Redis

from deploy_worker.runtimes.base import InstanceState, Runtime
from deploy_worker.runtimes.docker import HEARTBEAT_FILE, health_check_command
from deploy_worker.service import WorkerParts
from deploy_worker.spec import LABEL_NAMESPACE, LABEL_SPEC_HASH, LABEL_TENANT
from fleet.migrations import load_migrations
from fleet.settings import Settings
from sandbox.telegram import TelegramSandbox
from schemas.runtime import HEARTBEAT_TTL_SECONDS
from tests.support.dw_helpers import tenant_row, wait_status


async def _container_attrs(runtime: Runtime, slug: str) -> dict[str, Any]:
    status = await runtime.status(slug)
    client = runtime._client  # type: ignore[attr-defined]
    container = await asyncio.to_thread(client.containers.get, status.instance_id)
    return dict(container.attrs)


async def test_provision_runs_the_bot_and_it_answers_start(
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    runtime: Runtime,
    settings: Settings,
    telegram_sandbox: TelegramSandbox,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug, owner=777001)
    active = await wait_status(wpool, tenant.id, "active", timeout=60, runtime=runtime)
    assert active.bot_username == f"{unique_slug}_bot"

    deployment = await wpool.fetchrow(
        "SELECT * FROM control.deployments WHERE tenant_id = $1", tenant.id
    )
    status = await runtime.status(unique_slug)
    assert status.state == InstanceState.RUNNING
    assert deployment["status"] == "running"
    assert deployment["runtime"] == runtime.kind
    assert deployment["spec_hash"] == status.spec_hash
    assert deployment["container_id"] == status.instance_id
    assert deployment["ready_at"] is not None and deployment["image"] == settings.tenant_image
    labelled = await runtime.list_by_label({LABEL_TENANT: unique_slug})
    assert [i.slug for i in labelled] == [unique_slug]

    tenant_now = await tenant_row(wpool, tenant.id)
    expected = worker.specs.build(
        tenant_now, worker.tenants.secrets_of(tenant_now), worker.tenants.names(unique_slug)
    )
    assert status.spec_hash == expected.spec_hash  # the instance runs exactly this spec
    if runtime.kind == "process":
        env = dict(expected.env)
    else:
        attrs = await _container_attrs(runtime, unique_slug)
        env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
        # Secrets are files, not environment (issue 14; test_security_secrets.py proves it).
        assert not set(expected.secret_env) & set(env)
        env.update(expected.secret_env)
        labels = attrs["Config"]["Labels"]
        assert labels[LABEL_TENANT] == unique_slug
        assert labels[LABEL_NAMESPACE] == settings.tenant_role_prefix
        assert labels[LABEL_SPEC_HASH] == status.spec_hash
        assert attrs["HostConfig"]["Memory"] == settings.tenant_memory_mb * 1024 * 1024
        assert attrs["HostConfig"]["NanoCpus"] == int(settings.tenant_cpus * 1e9)
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == settings.tenant_restart_policy
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        check = attrs["Config"]["Healthcheck"]["Test"]
        # A shell test of the heartbeat file's age (test_docker_health.py), no interpreter.
        assert check == ["CMD-SHELL", health_check_command(HEARTBEAT_FILE, HEARTBEAT_TTL_SECONDS)]
        # Docker runs the check in the container, with the bot's own credentials: it passes.
        for _ in range(100):  # the first check runs one interval (30 s) after the start
            health = (await _container_attrs(runtime, unique_slug))["State"].get("Health") or {}
            if health.get("Status") == "healthy":
                break
            await asyncio.sleep(0.5)
        assert health.get("Status") == "healthy", health
    assert env["BOTFLEET_TENANT_SLUG"] == unique_slug
    prefix = (
        f"{settings.tenant_role_prefix}:t:{unique_slug}:"  # the installation's, then the tenant's
    )
    assert env["BOTFLEET_TENANT_REDIS_PREFIX"] == prefix
    assert env["BOTFLEET_TENANT_TELEGRAM_API_BASE"] == settings.telegram_api_base
    assert env["BOTFLEET_TENANT_DATABASE_URL"].startswith(
        f"postgresql://{settings.tenant_role_prefix}{unique_slug}:"
    )
    # The platform's own configuration never reaches a tenant bot.
    assert not {"BOTFLEET_DATABASE_URL", "BOTFLEET_MASTER_KEY", "BOTFLEET_REDIS_URL"} & set(env)

    assert await redis.exists(f"{prefix}heartbeat")
    schema = f"{settings.tenant_role_prefix}{unique_slug}"
    applied = await wpool.fetchval(
        f'SELECT array_agg(version ORDER BY version) FROM "{schema}".schema_migrations'
    )
    assert list(applied) == [m.version for m in load_migrations("tenant")]
    events = await wpool.fetch("SELECT kind FROM control.events WHERE tenant_id = $1", tenant.id)
    assert [e["kind"] for e in events] == ["tenant.live"]

    bot_id = int(
        await wpool.fetchval("SELECT bot_id FROM control.tenants WHERE id = $1", tenant.id)
    )
    user = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
    answer = await user.ask("/start", timeout=20)
    assert answer.get("text"), answer


async def test_invalid_token_fails_the_tenant_without_retries_or_instance(
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    runtime: Runtime,
    settings: Settings,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug, register=False)
    failed = await wait_status(wpool, tenant.id, "error", timeout=30)
    assert "rejected the bot token" in failed.status_reason
    job = await wpool.fetchrow("SELECT * FROM control.jobs WHERE tenant_id = $1", tenant.id)
    assert job["status"] == "dead" and job["attempts"] == 1
    assert (await runtime.status(unique_slug)).state == InstanceState.MISSING
    assert await runtime.list_by_label() == []
    schema = f"{settings.tenant_role_prefix}{unique_slug}"
    assert not await wpool.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
    events = await wpool.fetch(
        "SELECT kind, payload FROM control.events WHERE tenant_id = $1", tenant.id
    )
    assert [e["kind"] for e in events] == ["tenant.failed"]
    deployment = await wpool.fetchrow(
        "SELECT * FROM control.deployments WHERE tenant_id = $1", tenant.id
    )
    assert deployment["status"] == "failed" and "rejected" in deployment["last_error"]
    # Nothing in the worker's view retries it: the reconciler leaves tenants in error alone.
    report = await worker.reconciler.run_once()
    assert report.enqueued == {}
    assert (await tenant_row(wpool, tenant.id)).status == "error"
