"""The docker runtime's container health check: a shell test of the heartbeat file's age, no
interpreter per check (issue 17: a hundred ``python -m tenant_bot --check-health`` every 30 s were
over a core of a 2-core host).

- the bot's :class:`~tenant_bot.heartbeat.Heartbeat` touches the file at each healthy beat Redis
  accepted, removes it while unhealthy and on shutdown (real Redis);
- the check command itself under ``/bin/sh``: fresh file healthy, old file unhealthy, no file falls
  back to the interpreter check;
- for real: a tenant bot's container is healthy in ``docker ps``; its process stopped (a stuck loop:
  SIGSTOP) makes it unhealthy once the file is older than the heartbeat's TTL, and healthy again once
  it runs (SIGCONT).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from deploy_worker.runtimes.base import Runtime
from deploy_worker.runtimes.docker import (
    HEARTBEAT_FILE,
    HEARTBEAT_FILE_VAR,
    DockerRuntime,
    health_check_command,
)
from deploy_worker.service import WorkerParts
from fleet.settings import Settings
from schemas.runtime import HEARTBEAT_TTL_SECONDS
from tenant_bot.heartbeat import Heartbeat
from tests.support.dw_helpers import tenant_row, wait_status

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_heartbeat_touches_the_file_while_healthy_and_removes_it_otherwise(
    redis: Redis, tmp_path: Path
) -> None:
    key = f"test:hb:{os.getpid()}:{time.monotonic_ns()}"
    path = tmp_path / "heartbeat"
    health = {"healthy": True}
    beat = Heartbeat(
        redis,
        key=key,
        ttl_seconds=30,
        clock=lambda: datetime.now(UTC),
        health=lambda: health,
        file=str(path),
    )
    try:
        assert await beat.beat()
        assert path.exists()
        os.utime(path, (time.time() - 100, time.time() - 100))
        assert await beat.beat()
        assert time.time() - path.stat().st_mtime < 5  # touched again

        health = {"healthy": False, "unhealthy": ["background: stuck"]}
        assert not await beat.beat()
        assert not path.exists()  # the check says unhealthy at once (and why, from Redis)

        health = {"healthy": True}
        assert await beat.beat()
        assert path.exists()
        await beat.clear()
        assert not path.exists() and not await redis.exists(key)
        assert beat.file_errors == 0
    finally:
        await redis.delete(key)


def _check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", health_check_command(str(path), HEARTBEAT_TTL_SECONDS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
        env=env or {"PATH": os.environ["PATH"]},
    )


def test_the_check_command_judges_the_file_age(tmp_path: Path) -> None:
    path = tmp_path / "heart beat"  # quoted in the command
    path.touch()
    fresh = _check(path)
    assert fresh.returncode == 0 and fresh.stdout.startswith("healthy: the heartbeat is "), fresh

    old = time.time() - HEARTBEAT_TTL_SECONDS - 5
    os.utime(path, (old, old))
    stale = _check(path)
    assert stale.returncode == 1
    assert "unhealthy: the heartbeat is 3" in stale.stdout  # 35 s (36 on a slow second)

    # No file: the interpreter check decides (here: no runtime contract at all, exit 2).
    path.unlink()
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    missing = _check(path, env)
    assert missing.returncode == 2, missing
    assert "BOTFLEET_TENANT_" in missing.stderr


async def _health(client: Any, container_id: str) -> dict[str, Any]:
    container = await asyncio.to_thread(client.containers.get, container_id)
    return dict(container.attrs["State"].get("Health") or {})


async def _wait_health(client: Any, container_id: str, wanted: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = await _health(client, container_id)
        if health.get("Status") == wanted:
            return health
        await asyncio.sleep(0.5)
    raise AssertionError(f"not {wanted} within {timeout:g}s: {health}")


@pytest.mark.docker
@pytest.mark.parametrize("runtime_kind", ["docker"], indirect=False)
async def test_a_stuck_bot_container_turns_unhealthy_and_back(
    runtime_kind: str,
    docker_engine: Any,
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    runtime: Runtime,
    settings: Settings,
    redis: Redis,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug, owner=777501)
    await wait_status(wpool, tenant.id, "active", timeout=120, runtime=runtime)
    row = await tenant_row(wpool, tenant.id)
    spec = worker.specs.build(
        row, worker.tenants.secrets_of(row), worker.tenants.names(unique_slug)
    )
    # The same container, checked every second instead of every 30 s (the runtime's parameter).
    fast = DockerRuntime(
        client=docker_engine, namespace=settings.tenant_role_prefix, health_interval_s=1.0
    )
    # As the worker does before a new instance: the old bot's heartbeat (killed, not stopped, by
    # the recreation) must not answer for the new one.
    result = await fast.ensure(spec, recreate=True)  # host network: no relay, nothing to close
    await redis.delete(worker.tenants.names(unique_slug).redis_prefix + "heartbeat")
    cid = result.status.instance_id
    assert cid is not None
    container = await asyncio.to_thread(docker_engine.containers.get, cid)
    test = container.attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD-SHELL" and "python" not in test[1].split("||")[0]
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env[HEARTBEAT_FILE_VAR] == HEARTBEAT_FILE

    # Healthy by the shell test of the file (the interpreter check says only "healthy").
    deadline = time.monotonic() + 120
    while True:
        health = await _wait_health(docker_engine, cid, "healthy", timeout=120)
        if health["Log"][-1]["Output"].startswith("healthy: the heartbeat is "):
            break
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.5)

    # A stuck bot: its process stopped, its heartbeat file ages past the TTL.
    pid = int(container.attrs["State"]["Pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        stuck = await _wait_health(
            docker_engine, cid, "unhealthy", timeout=HEARTBEAT_TTL_SECONDS + 40
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "unhealthy: the heartbeat is" in stuck["Log"][-1]["Output"]
    # Running again: the next beat (within 10 s) touches the file.
    await _wait_health(docker_engine, cid, "healthy", timeout=40)
