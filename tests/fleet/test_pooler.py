"""The pooler's configuration and login lookup (fleet/pooler.py), as compose and ``botfleet up`` use
them: the compose file's ini is the rendered one, the lookup answers for tenants only, and ``up``
starts a real PgBouncer where it pays off and says why not elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from cli.embedded import EmbeddedPgBouncer, start_pooler
from fleet.data_plane import TenantNames, drop_database_plane, ensure_database_plane
from fleet.pooler import auth_lookup_sql, compose_config, drop_auth_lookup
from fleet.pooler_stats import read_pooler_figures
from fleet.settings import Settings
from tests.support.pgbouncer import MISSING, pooler_folder, running_pooler

ROOT = Path(__file__).resolve().parents[2]


def test_the_compose_ini_is_the_rendered_configuration() -> None:
    text = (ROOT / "ops" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert text.split("\n", 1)[1] == compose_config().ini()
    assert "pool_mode = transaction" in text
    assert "auth_query = SELECT usename, passwd FROM pgbouncer.get_auth($1)" in text


def test_the_lookup_sql_ships_with_the_package() -> None:
    assert "SECURITY DEFINER" in auth_lookup_sql()
    assert auth_lookup_sql() == (ROOT / "migrations" / "pooler" / "auth_lookup.sql").read_text()


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
async def test_the_compose_role_script_installs_a_lookup_for_tenants_only(
    database_url: str, role_prefix: str, tmp_path: Path
) -> None:
    """ops/postgres/pooler-role.sql, as compose's db-roles runs it (twice: idempotent): the lookup
    role gets a tenant's SCRAM secret, and nothing for a superuser or a role that creates roles."""
    shutil.copy(ROOT / "ops" / "postgres" / "pooler-role.sql", tmp_path)
    shutil.copy(ROOT / "migrations" / "pooler" / "auth_lookup.sql", tmp_path)
    role, password = role_prefix + "pooler", secrets.token_hex(8)
    parts = urlsplit(database_url)
    names = TenantNames.of("lookup", role_prefix)
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(2):
            done = await asyncio.to_thread(
                subprocess.run,
                ["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
                 "-U", parts.username or "postgres", "-d", parts.path.lstrip("/"), "-q",
                 "-v", "ON_ERROR_STOP=1", "-v", f"pooler_role={role}",
                 "-v", f"pooler_password={password}", "-f", str(tmp_path / "pooler-role.sql")],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        await ensure_database_plane(conn, names, password=secrets.token_hex(8))
        await conn.execute(f'SET ROLE "{role}"')
        [(name, secret)] = await conn.fetch("SELECT * FROM pgbouncer.get_auth($1)", names.role)
        assert name == names.role and secret.startswith("SCRAM-SHA-256$")
        assert await conn.fetch("SELECT * FROM pgbouncer.get_auth('postgres')") == []
        await conn.execute("RESET ROLE")
        creator = role_prefix + "creator"
        await conn.execute(f"CREATE ROLE \"{creator}\" LOGIN CREATEROLE PASSWORD 'x-{password}'")
        try:
            assert await conn.fetch("SELECT * FROM pgbouncer.get_auth($1)", creator) == []
        finally:
            await conn.execute(f'DROP ROLE "{creator}"')
    finally:
        await conn.execute("RESET ROLE")
        await drop_database_plane(conn, names)
        await drop_auth_lookup(conn, auth_user=role)
        await conn.close()


def _settings(database_url: str, **values: object) -> Settings:
    return Settings(_env_file=None).model_copy(  # type: ignore[call-arg]
        update={"database_url": database_url, "runtime": "process", **values}
    )


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"pooler": "off"}, "BOTFLEET_POOLER=off"),
        ({"tenant_database_host": "10.0.0.5"}, "BOTFLEET_TENANT_DATABASE_HOST is set"),
        ({"runtime": "swarm"}, "the swarm runtime's bots cannot reach"),
    ],
)
async def test_up_connects_bots_directly_where_a_pooler_does_not_pay_off(
    database_url: str, tmp_path: Path, values: dict[str, object], reason: str
) -> None:
    config = _settings(database_url, **values)
    async with AsyncExitStack() as exits:
        after, line = await start_pooler(config, tmp_path, exits)
    assert after is config and line.startswith("direct, no pooler: ") and reason in line


async def test_up_starts_its_pooler_and_bots_log_in_through_it(
    database_url: str, role_prefix: str
) -> None:
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    names, password = TenantNames.of("upbot", role_prefix), secrets.token_hex(8)
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_database_plane(conn, names, password=password)
        async with AsyncExitStack() as exits:
            data = exits.enter_context(pooler_folder())
            after, line = await start_pooler(
                _settings(database_url), data, exits, auth_user=role_prefix + "pooler"
            )
            assert after.tenant_database_pooler and after.tenant_database_host == "127.0.0.1"
            assert f":{after.tenant_database_port} (transaction mode" in line
            database = urlsplit(database_url).path
            bot = await asyncpg.connect(
                f"postgresql://{names.role}:{password}@127.0.0.1:{after.tenant_database_port}"
                f"{database}",
                statement_cache_size=0,
            )
            assert await bot.fetchval("SELECT current_user") == names.role
            # the worker reads its admin console with the URL `up` hands it
            assert after.pooler_stats_url is not None
            figures = await read_pooler_figures(after.pooler_stats_url.get_secret_value())
            assert figures.client_connections == 1 and figures.server_connections_max == 40
            await bot.close()
    finally:
        await drop_database_plane(conn, names)
        await drop_auth_lookup(conn, auth_user=role_prefix + "pooler")
        await conn.close()


@contextlib.asynccontextmanager
async def _login_roles(
    database_url: str, prefix: str, count: int
) -> AsyncIterator[tuple[list[str], str]]:
    """``count`` plain login roles (what the lookup answers for) with one password, dropped after."""
    roles, password = [f"{prefix}r{i}" for i in range(count)], secrets.token_hex(8)
    conn = await asyncpg.connect(database_url)
    try:
        for role in roles:
            await conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        yield roles, password
    finally:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)", roles
        )
        for role in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()


async def test_a_tenant_behind_a_long_transaction_gets_its_reserve_connection_after_a_second(
    database_url: str, role_prefix: str
) -> None:
    """One server connection per tenant (``default_pool_size`` 1) keeps many tenants within the
    bound; a tenant whose connection is busy with a slow transaction (an export, statistics) is
    lent a reserve one after ``reserve_pool_timeout`` (1 s), not made to wait the transaction out."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    async with (
        running_pooler(database_url, max_server_connections=6, pool_per_tenant=1) as pooler,
        _login_roles(database_url, role_prefix, 1) as ([role], password),
    ):
        assert pooler.bouncer.config.reserve_per_tenant == 1
        slow, quick = [
            await asyncpg.connect(pooler.url(role, password), statement_cache_size=0)
            for _ in range(2)
        ]
        try:
            sleeping = asyncio.create_task(slow.execute("SELECT pg_sleep(6)"))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            assert await quick.fetchval("SELECT 1") == 1
            waited = time.monotonic() - started
            await sleeping
        finally:
            await slow.close()
            await quick.close()
    assert 0.6 < waited < 4.5, waited  # the reserve timeout, not the 6 s transaction


async def test_at_the_bound_pgbouncer_closes_another_tenants_idle_connection_at_once(
    database_url: str, role_prefix: str
) -> None:
    """PgBouncer 1.18 at ``max_db_connections`` closes the longest idle server connection of any
    tenant's pool (``evict_connection``) to open one for a waiting tenant: idle tenants hold nothing
    that others wait for, however long ``server_idle_timeout`` (60 s here)."""
    if EmbeddedPgBouncer.binary() is None:
        pytest.skip(MISSING)
    async with (
        running_pooler(
            database_url, max_server_connections=2, pool_per_tenant=1, server_idle_s=60
        ) as pooler,
        _login_roles(database_url, role_prefix, 4) as (roles, password),
    ):
        watcher = await asyncpg.connect(database_url)
        clients = []
        try:
            waits = []
            for role in roles:
                client = await asyncpg.connect(pooler.url(role, password), statement_cache_size=0)
                clients.append(client)
                started = time.monotonic()
                assert await client.fetchval("SELECT current_user") == role
                waits.append(time.monotonic() - started)
            servers = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1) OR usename = $2",
                roles,
                pooler.bouncer.config.auth_user,
            )
        finally:
            for client in clients:
                await client.close()
            await watcher.close()
    assert max(waits) < 3, waits  # no wait for the 60 s idle timeout of the others' connections
    assert servers <= 2 + 1, servers  # the bound (an evicted backend may still be exiting)
