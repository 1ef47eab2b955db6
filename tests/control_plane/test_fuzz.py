"""Fuzzing the API with schemathesis against its own OpenAPI: no 5xx, no response that breaks the
documented schema. The app runs under uvicorn on a database of its own (created and dropped here), so
generated plans and tenants never touch the shared test database; a seeded tenant, plan and dead job
let examples reach real rows."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import requests
import schemathesis
import uvicorn
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, settings
from hypothesis.internal.conjecture import utils as conjecture_utils
from redis.asyncio import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from control_plane.app import create_app
from fleet.apikeys import ApiKeyService
from fleet.data_plane import install_platform
from fleet.db import create_pool
from fleet.migrations import migrate_control
from fleet.secrets import SecretBox
from fleet.settings import load_settings
from fleet.tenants import TenantService
from schemas.tenants import TenantCreate

MAX_EXAMPLES = 25


def _restore_many_more() -> None:
    """hypothesis-jsonschema (used by schemathesis 3) calls ``many.more()``, which recent Hypothesis
    replaced by iterating inside ``with many(...)``. Until the dependency pins agree, give ``many``
    its old method back, built on the new protocol (same decisions, same spans)."""
    many = conjecture_utils.many
    if hasattr(many, "more"):
        return

    def more(self: Any) -> bool:
        if self._depth is None:
            self.__enter__()
            self._compat_iterator = self._iterate()
        try:
            next(self._compat_iterator)
        except StopIteration:
            self.__exit__(None)
            return False
        return True

    many.more = more


_restore_many_more()
MASTER_KEY = Fernet.generate_key().decode()
_SCHEMA_SETTINGS = load_settings(
    database_url="postgresql://fuzz@127.0.0.1/fuzz",
    redis_url="redis://127.0.0.1:6379/0",
    master_key=MASTER_KEY,
)
# FastAPI writes OpenAPI 3.1, which schemathesis 3 supports behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()
# The billing team fuzzes its own routes (their answers depend on YooKassa settings).
schema = schemathesis.from_dict(create_app(_SCHEMA_SETTINGS).openapi()).exclude(tag="billing")


class _Logs:
    """A log source standing in for the deploy worker's runtime."""

    kind = "process"

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        return "\n".join(f"{slug}: line {i}" for i in range(tail + 5))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _prepare(admin_url: str, name: str, url: str, redis_url: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    pool = await create_pool(url, max_size=2)
    redis = Redis.from_url(redis_url)
    try:
        async with pool.acquire() as conn:
            await install_platform(conn)
        await migrate_control(pool)
        await pool.execute(
            "INSERT INTO control.plans (code, name, price, period_days) VALUES"
            " ('basic', 'Basic', 990, 30)"
        )
        tenants = TenantService(pool=pool, redis=redis, secrets=SecretBox(MASTER_KEY))
        tenant = await tenants.create(
            TenantCreate(
                slug="barber_ivan",
                display_name="Ivan",
                owner_telegram_ids=[1],
                bot_token=f"{secrets.randbelow(10**9) + 10**9}:AA{secrets.token_urlsafe(33)[:33]}",
                plan_code="basic",
            ),
            actor="fuzz",
            provision_now=False,
        )
        await pool.execute(
            "UPDATE control.jobs SET status = 'dead' WHERE tenant_id = $1", tenant.id
        )
        made = await ApiKeyService(pool=pool).create(scopes=["admin"], actor="fuzz")
        return made.key
    finally:
        await redis.aclose()
        await pool.close()


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def fuzz_server(database_url: str, redis_url: str) -> Iterator[tuple[str, str]]:
    """``(base URL, admin key)`` of the API served by uvicorn on a throw-away database."""
    parts = urlsplit(database_url)
    name = "botfleet_fuzz_" + secrets.token_hex(4)
    url = urlunsplit(parts._replace(path="/" + name))
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    key = asyncio.run(_prepare(admin_url, name, url, redis_url))
    app = create_app(
        load_settings(
            database_url=url,
            redis_url=redis_url,
            master_key=MASTER_KEY,
            api_rate_limit="1000000/minute",
            db_pool_size=4,
        ),
        log_source=_Logs(),
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        asyncio.run(_drop(admin_url, name))


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.mark.slow  # property-based: ~100 generated requests per operation, ~25 s in all
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_openapi(
    case: schemathesis.Case, fuzz_server: tuple[str, str], session: requests.Session
) -> None:
    base_url, key = fuzz_server
    response = case.call(
        base_url=base_url, session=session, headers={"Authorization": f"Bearer {key}"}
    )
    case.validate_response(response, checks=(not_a_server_error, response_schema_conformance))
