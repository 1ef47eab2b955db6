"""Issue 14, item 4: a tenant's secrets (bot token, database and Redis passwords) never appear in its
container's environment, ``docker inspect``, ``docker logs``, a swarm service's spec or any command
line; the bot reads them from files (``BOTFLEET_TENANT_<NAME>_FILE``) and works.

The docker and swarm tests provision real tenants with real credentials and look for each secret in
everything the engine shows about the instance, and in the host's ``/proc`` of its processes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.runtimes.base import Runtime
from deploy_worker.runtimes.swarm import SwarmRuntime
from deploy_worker.service import WorkerParts
from deploy_worker.spec import SECRETS_DIR, RuntimeSpec
from fleet.repositories.tenants import Tenant
from fleet.secrets import SecretBox
from fleet.tenants import TenantSecrets
from sandbox.telegram import TelegramSandbox
from schemas.runtime import RuntimeContractError, TenantRuntime, secret_env_names
from tests.support.dw_helpers import running_worker, tenant_row, wait_status

TOKEN = "123456789:" + "S" * 35
CONTRACT = {
    "BOTFLEET_TENANT_SLUG": "acme",
    "BOTFLEET_TENANT_REDIS_PREFIX": "tenant_:t:acme:",
    "BOTFLEET_TENANT_OWNER_IDS": "1",
}


# -- the contract reads *_FILE -------------------------------------------------------------------


def test_contract_reads_secrets_from_files(tmp_path: Path) -> None:
    files = {
        "BOTFLEET_TENANT_BOT_TOKEN": TOKEN + "\n",
        "BOTFLEET_TENANT_DATABASE_URL": "postgresql://tenant_acme:pa+ss@db:5432/botfleet",
        "BOTFLEET_TENANT_REDIS_URL": "redis://tenant_acme:r3d1s@redis:6379/0",
    }
    env = dict(CONTRACT)
    for name, value in files.items():
        path = tmp_path / name.lower()
        path.write_text(value, encoding="utf-8")
        env[f"{name}_FILE"] = str(path)
    runtime = TenantRuntime.from_env(env)
    assert runtime.bot_token.get_secret_value() == TOKEN  # one trailing newline dropped
    assert runtime.database_url.get_secret_value().endswith(":pa+ss@db:5432/botfleet")
    assert runtime.redis_url.get_secret_value() == files["BOTFLEET_TENANT_REDIS_URL"]
    # The plain variables keep working (the process runtime passes them) and win over files.
    plain = TenantRuntime.from_env({**env, "BOTFLEET_TENANT_REDIS_URL": "redis://other:1/0"})
    assert plain.redis_url.get_secret_value() == "redis://other:1/0"


def test_contract_names_an_unreadable_secret_file_without_its_content(tmp_path: Path) -> None:
    env = {
        **CONTRACT,
        "BOTFLEET_TENANT_BOT_TOKEN_FILE": str(tmp_path / "missing"),
        "BOTFLEET_TENANT_DATABASE_URL": "postgresql://u:p@h/d",
        "BOTFLEET_TENANT_REDIS_URL": "redis://u:p@h/0",
    }
    with pytest.raises(RuntimeContractError, match="BOTFLEET_TENANT_BOT_TOKEN_FILE names a file"):
        TenantRuntime.from_env(env)


def _spec(**env: str) -> RuntimeSpec:
    base = {
        "BOTFLEET_TENANT_SLUG": "acme",
        "BOTFLEET_TENANT_BOT_TOKEN": TOKEN,
        "BOTFLEET_TENANT_DATABASE_URL": "postgresql://tenant_acme:dbpass1@db/botfleet",
        "BOTFLEET_TENANT_REDIS_URL": "redis://tenant_acme:redispass1@redis:6379/0",
    }
    return RuntimeSpec(
        slug="acme",
        namespace="tenant_",
        image="botfleet:latest",
        command=("botfleet", "tenant-bot"),
        entrypoint="tenant_bot.app:run_from_env",
        env={**base, **env},
    )


def test_spec_hash_changes_with_a_rotated_secret_and_is_made_of_no_secret() -> None:
    spec = _spec()
    rotated = _spec(BOTFLEET_TENANT_DATABASE_URL="postgresql://tenant_acme:dbpass2@db/botfleet")
    assert spec.spec_hash != rotated.spec_hash  # a rotation redeploys the bot
    assert spec.spec_hash == _spec().spec_hash  # and nothing else does
    assert set(spec.secret_env) == secret_env_names() - {"BOTFLEET_TENANT_WEBHOOK_SECRET"}
    assert not set(spec.public_env) & secret_env_names()
    shown = json.dumps([spec.labels, spec.public_env, spec.secrets_digest, repr(spec)])
    for secret in (TOKEN, "dbpass1", "redispass1"):
        assert secret not in shown


# -- docker: for real ------------------------------------------------------------------------------


def _secrets_of(worker: WorkerParts, tenant: Tenant) -> list[str]:
    secrets: TenantSecrets = worker.tenants.secrets_of(tenant)
    values = [secrets.bot_token, secrets.db_password, secrets.redis_password]
    # The token's secret half alone, too (the part after the bot id).
    values.append(secrets.bot_token.split(":", 1)[1])
    assert all(len(v) >= 16 for v in values)
    return values


def _host_proc_texts(pids: list[int]) -> str:
    """Command lines and environments of the host processes ``pids`` (as ``ps`` would show)."""
    texts = []
    for pid in pids:
        for part in ("cmdline", "environ"):
            try:
                texts.append(Path(f"/proc/{pid}/{part}").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(texts)


def _assert_hidden(secrets: list[str], where: str, text: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a tenant secret is visible in {where}"


@pytest.mark.docker
@pytest.mark.parametrize("runtime_kind", ["docker"], indirect=False)
async def test_docker_tenant_secrets_are_files_not_environment(
    runtime_kind: str,
    docker_engine: Any,
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    runtime: Runtime,
    telegram_sandbox: TelegramSandbox,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug, owner=777401)
    await wait_status(wpool, tenant.id, "active", timeout=90, runtime=runtime)
    row = await tenant_row(wpool, tenant.id)
    secrets = _secrets_of(worker, row)
    status = await runtime.status(unique_slug)
    container = await asyncio.to_thread(docker_engine.containers.get, status.instance_id)

    # docker inspect: environment, labels, command, mounts - nothing of the secrets.
    _assert_hidden(secrets, "docker inspect", json.dumps(container.attrs))
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert not set(env) & secret_env_names()
    assert env["BOTFLEET_TENANT_BOT_TOKEN_FILE"] == f"{SECRETS_DIR}/bot_token"
    assert env["BOTFLEET_TENANT_DATABASE_URL_FILE"] == f"{SECRETS_DIR}/database_url"
    assert env["BOTFLEET_TENANT_REDIS_URL_FILE"] == f"{SECRETS_DIR}/redis_url"

    # The files: the bot's user only, in a folder it cannot write.
    for name in ("bot_token", "database_url", "redis_url"):
        code, out = await asyncio.to_thread(
            container.exec_run, ["stat", "-c", "%a %u", f"{SECRETS_DIR}/{name}"]
        )
        assert (code, out.decode().strip()) == (0, "400 10001"), name
    code, _ = await asyncio.to_thread(container.exec_run, ["touch", f"{SECRETS_DIR}/x"])
    assert code != 0

    # The bot works with them: it answers /start, and the health check (run by Docker in the
    # container with the same *_FILE contract) passes.
    bot_id = row.bot_id
    user = await telegram_sandbox.user(bot_id=bot_id, first_name="Sec")
    answer = await user.ask("/start", timeout=30)
    assert answer.get("text"), answer
    for _ in range(90):
        await asyncio.to_thread(container.reload)
        if (container.attrs["State"].get("Health") or {}).get("Status") == "healthy":
            break
        await asyncio.sleep(1)
    assert container.attrs["State"]["Health"]["Status"] == "healthy"

    # ps: the command lines (and environments) of the container's processes, seen from the host.
    top = await asyncio.to_thread(container.top, ps_args="-o pid,args")
    _assert_hidden(secrets, "docker top", json.dumps(top))
    pids = [int(process[0]) for process in top["Processes"]]
    assert pids
    _assert_hidden(secrets, "/proc/<pid>/cmdline and environ", _host_proc_texts(pids))

    # docker logs (after the bot served a request and ran its health checks).
    logs = await asyncio.to_thread(container.logs, stdout=True, stderr=True)
    _assert_hidden(secrets, "docker logs", logs.decode(errors="replace"))


# -- swarm: Docker secrets ------------------------------------------------------------------------


@pytest.fixture
async def swarm(swarm_engine: Any, role_prefix: str) -> AsyncIterator[SwarmRuntime]:
    runtime = SwarmRuntime(client=swarm_engine, namespace=role_prefix, restart_delay_s=0.5)
    yield runtime
    for instance in await runtime.list_by_label():
        await runtime.remove(instance.slug)


@pytest.mark.docker
@pytest.mark.parametrize("runtime_kind", ["swarm"], indirect=False)
async def test_swarm_tenant_secrets_are_docker_secrets(
    runtime_kind: str,
    swarm: SwarmRuntime,
    swarm_engine: Any,
    make_settings: Any,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    redis: Redis,
    secret_box: SecretBox,
    telegram_sandbox: TelegramSandbox,
    unique_slug: str,
) -> None:
    settings = make_settings(runtime="swarm", heartbeat_timeout_s=90.0)
    tenant = await make_tenant(unique_slug, owner=777402)
    async with running_worker(
        settings, pool=wpool, redis=redis, secrets=secret_box, runtime=swarm
    ) as parts:
        await wait_status(wpool, tenant.id, "active", timeout=150, runtime=swarm)
        row = await tenant_row(wpool, tenant.id)
        secrets = _secrets_of(parts, row)
        status = await swarm.status(unique_slug)
        service = await asyncio.to_thread(swarm_engine.services.get, status.instance_id)
        _assert_hidden(secrets, "docker service inspect", json.dumps(service.attrs))
        spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        env = dict(item.split("=", 1) for item in spec["Env"])
        assert not set(env) & secret_env_names()
        assert env["BOTFLEET_TENANT_BOT_TOKEN_FILE"] == "/run/secrets/bot_token"
        assert {s["File"]["Name"] for s in spec["Secrets"]} == {
            "bot_token",
            "database_url",
            "redis_url",
        }
        assert {s["File"]["Mode"] for s in spec["Secrets"]} == {0o400}

        tasks = [t for t in service.tasks() if t["Status"]["State"] == "running"]
        container_id = tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
        container = await asyncio.to_thread(swarm_engine.containers.get, container_id)
        _assert_hidden(secrets, "docker inspect of the task", json.dumps(container.attrs))
        top = await asyncio.to_thread(container.top, ps_args="-o pid,args")
        pids = [int(process[0]) for process in top["Processes"]]
        _assert_hidden(secrets, "/proc of the task", _host_proc_texts(pids))

        user = await telegram_sandbox.user(bot_id=row.bot_id, first_name="Sw")
        answer = await user.ask("/start", timeout=30)
        assert answer.get("text"), answer
        logs = await swarm.logs(unique_slug)
        _assert_hidden(secrets, "service logs", logs)

    # Removing the tenant removes its Docker secrets.
    await swarm.remove(unique_slug)
    left = await asyncio.to_thread(
        swarm_engine.secrets.list, filters={"label": [f"botfleet.tenant={unique_slug}"]}
    )
    assert left == []
