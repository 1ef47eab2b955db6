"""Fixtures of the end-to-end tests: ``botfleet up`` as a subprocess on the test servers.

Each platform gets a scratch database of its own on the test PostgreSQL (its worker converges every
tenant of its database, so it must not see other tests' tenants), the test Redis, a role prefix of
its own (roles, schemas, ACL users and runtime namespace), free ports and a temporary data folder.
Whatever happens, the process group is killed and the database, roles, ACL users and containers are
removed afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.e2e_support import (
    IMAGE,
    StartPlatform,
    UpProcess,
    clean_env,
    drop_redis_users,
    free_port,
    remove_containers,
    scratch_database,
)


@pytest.fixture
async def start_platform(
    database_url: str, redis_url: str, role_prefix: str, tmp_path: Path
) -> AsyncIterator[StartPlatform]:
    """``await start_platform(runtime="process")``: a running ``botfleet up`` (its banner in
    ``.banner``); stopped and cleaned up after the test."""
    started: list[UpProcess] = []
    async with scratch_database(database_url, role_prefix=role_prefix) as db_url:

        async def start(*, runtime: str = "process", **settings: str) -> UpProcess:
            env = clean_env(
                BOTFLEET_DATABASE_URL=db_url,
                BOTFLEET_REDIS_URL=redis_url,
                BOTFLEET_TENANT_ROLE_PREFIX=role_prefix,
                BOTFLEET_RUNTIME=runtime,
                BOTFLEET_TENANT_IMAGE=IMAGE,
                BOTFLEET_TENANT_NETWORK="host",
                BOTFLEET_SALES_OUTBOX_INTERVAL_S="0.3",
                BOTFLEET_WORKER_POLL_S="0.5",
                BOTFLEET_STOP_TIMEOUT_S="3",
                BOTFLEET_WORKER_SHUTDOWN_S="5",
                **settings,
            )
            up = UpProcess(
                cwd=tmp_path,
                env=env,
                logs=tmp_path / "logs",
                port=free_port(),
                data_dir=tmp_path / "data",
            )
            started.append(up)
            await up.start()
            return up

        try:
            yield start
        finally:
            for up in started:
                up.kill()
            remove_containers(role_prefix)
    await drop_redis_users(redis_url, role_prefix=role_prefix)
