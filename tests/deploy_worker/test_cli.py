"""The operator CLI against a running worker: fleet status, suspend/resume, jobs, rolling upgrade."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import asyncpg
import pytest

from deploy_worker.runtimes.base import InstanceState, Runtime
from deploy_worker.service import WorkerParts
from fleet.settings import ENV_PREFIX, Settings
from tests.support.dw_helpers import wait_status


async def _botfleet(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, (list, dict)):
            continue
        env[ENV_PREFIX + name.upper()] = str(
            value.get_secret_value() if hasattr(value, "get_secret_value") else value
        )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow  # a dozen CLI processes against a live fleet: ~16 s
@pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)
async def test_operator_commands(
    worker: WorkerParts,
    make_tenant: Any,
    wpool: asyncpg.Pool,
    runtime: Runtime,
    settings: Settings,
    unique_slug: str,
) -> None:
    tenant = await make_tenant(unique_slug)
    await wait_status(wpool, tenant.id, "active", runtime=runtime)

    code, out, err = await _botfleet(settings, "fleet", "status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["runtime"] == "process" and status["orphans"] == []
    [view] = status["tenants"]
    assert (view["slug"], view["actual"], view["drift"]) == (unique_slug, "running", None)

    code, out, err = await _botfleet(
        settings, "tenants", "suspend", unique_slug, "--wait", "--timeout", "60"
    )
    assert code == 0, err
    await wait_status(wpool, tenant.id, "suspended")
    assert (await runtime.status(unique_slug)).state == InstanceState.STOPPED

    code, out, err = await _botfleet(
        settings, "tenants", "resume", unique_slug, "--wait", "--timeout", "60"
    )
    assert code == 0, err
    await wait_status(wpool, tenant.id, "active")

    code, out, err = await _botfleet(
        settings, "fleet", "upgrade", "--image", "botfleet:next", "--parallel", "2"
    )
    assert code == 0, out + err
    assert "1 upgraded, 0 failed" in out
    deployment = await wpool.fetchrow(
        "SELECT image, desired_image FROM control.deployments WHERE tenant_id = $1", tenant.id
    )
    assert deployment["image"] == deployment["desired_image"] == "botfleet:next"
    assert (await runtime.status(unique_slug)).image == "botfleet:next"

    code, out, err = await _botfleet(settings, "jobs", "list", "--tenant", unique_slug, "--json")
    assert code == 0, err
    kinds = [j["kind"] for j in json.loads(out)]
    assert kinds == ["redeploy", "resume", "suspend", "provision"]

    code, out, err = await _botfleet(settings, "tenants", "logs", unique_slug, "--tail", "5")
    assert code == 0, err

    code, out, err = await _botfleet(settings, "jobs", "retry", "999999")
    assert code == 1 and "does not exist" in err
