"""Issue 14 item 5: the platform is no superuser; a narrow role creates and drops tenant planes.

A scratch database gets its roles from ``ops/postgres/roles.sql`` exactly as compose's ``db-roles``
one-shot runs it (psql, as a superuser). Then the platform role migrates ``control``, the provisioner
builds and drops a tenant through ``TenantService`` as the worker does, and each role attacks what it
must not reach: the platform role the roles and the tenant's data, the provisioner ``control``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from fleet.data_plane import TenantRoleLimits, install_platform, terminate_runaway_backends
from fleet.db import create_pool
from fleet.migrations import migrate_control, migrate_tenants
from fleet.secrets import SecretBox, generate_master_key
from fleet.tenants import TenantService
from schemas.tenants import TenantCreate

OPS = Path(__file__).resolve().parents[2] / "ops" / "postgres"
ROLES_SQL, UPGRADE_SQL = OPS / "roles.sql", OPS / "upgrade-roles.sql"
UPSERT_NAME = (
    "INSERT INTO settings (business_name) VALUES ($1)"
    " ON CONFLICT (id) DO UPDATE SET business_name = EXCLUDED.business_name"
)


@dataclass(frozen=True)
class Installation:
    database: str
    platform: str  # role names
    provisioner: str
    tenant_prefix: str
    platform_url: str
    provisioner_url: str
    superuser_url: str
    passwords: dict[str, str]


def _url(base: str, database: str, role: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(base)
    host = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    netloc = (
        host if role is None else f"{quote(role, safe='')}:{quote(password or '', safe='')}@{host}"
    )
    if role is None and parts.username:
        netloc = f"{parts.username}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


@pytest.fixture
async def installation(database_url: str, role_prefix: str) -> AsyncIterator[Installation]:
    """A scratch database and the names of its roles (made by :func:`_apply`); all dropped after."""
    database = f"botfleet_lp_{secrets.token_hex(4)}"
    platform, provisioner = f"{role_prefix}platform", f"{role_prefix}prov"
    admin = await asyncpg.connect(_url(database_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    passwords = {
        platform: "p+a/s=s#w@o:r%d " + secrets.token_hex(4),
        provisioner: secrets.token_hex(8),
    }
    try:
        yield Installation(
            database=database,
            platform=platform,
            provisioner=provisioner,
            tenant_prefix=f"{role_prefix}t_",
            platform_url=_url(database_url, database, platform, passwords[platform]),
            provisioner_url=_url(database_url, database, provisioner, passwords[provisioner]),
            superuser_url=_url(database_url, database),
            passwords=passwords,
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in await admin.fetch(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", role_prefix
        ):
            await admin.execute(f'DROP OWNED BY "{role["rolname"]}"')  # its parameter grant
            await admin.execute(f'DROP ROLE IF EXISTS "{role["rolname"]}"')
        await admin.close()


async def _apply(inst: Installation, script: Path) -> None:
    """Run one of ops/postgres's scripts as the superuser, as compose's db-roles does."""
    variables = {
        "dbname": inst.database,
        "platform_role": inst.platform,
        "platform_password": inst.passwords[inst.platform],
        "provisioner_role": inst.provisioner,
        "provisioner_password": inst.passwords[inst.provisioner],
        "tenant_prefix": inst.tenant_prefix,
    }
    args = [arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")]
    proc = await asyncio.create_subprocess_exec(
        "psql",
        inst.superuser_url,
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        *args,
        "-f",
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()


def _token() -> str:
    return f"{secrets.randbelow(10**9) + 10**9}:AA{secrets.token_urlsafe(33)[:33]}"


async def test_the_platform_runs_without_superuser_and_the_provisioner_builds_tenants(
    installation: Installation, redis: Redis
) -> None:
    inst = installation
    await _apply(inst, ROLES_SQL)
    platform = await create_pool(inst.platform_url, max_size=3)
    provisioner = await create_pool(inst.provisioner_url, max_size=3)
    try:
        for pool, role in ((platform, inst.platform), (provisioner, inst.provisioner)):
            row = await pool.fetchrow(
                "SELECT current_user AS who, rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            assert row["who"] == role and row["rolsuper"] is False
        async with provisioner.acquire() as conn:
            await install_platform(conn)  # btree_gist (where shipped), PUBLIC off `public`
        assert await migrate_control(platform)  # the control schema is the platform role's
        service = TenantService(
            pool=platform,
            redis=redis,
            secrets=SecretBox(generate_master_key()),
            role_prefix=inst.tenant_prefix,
            provisioner=provisioner,
        )
        slug = "shop" + secrets.token_hex(3)
        try:
            await service.create(
                TenantCreate(
                    slug=slug, display_name="Shop", owner_telegram_ids=[1], bot_token=_token()
                ),
                actor="test",
                provision_now=True,
                enqueue_provision=False,
            )
            tenant = await service.get(slug)
            await service.ensure_data_plane(tenant)  # re-provisioning converges, as the worker does
            names = service.names(slug)
            settings = await provisioner.fetchval(
                "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s"
                " JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0",
                names.role,
            )
            for limit in (
                "statement_timeout",
                "idle_in_transaction_session_timeout",
                "temp_file_limit",
            ):
                assert limit in settings, settings  # every limit, temp files included
            tenant_url = _url(
                inst.superuser_url,
                inst.database,
                names.role,
                service.secrets_of(tenant).db_password,
            )
            shop = await asyncpg.connect(tenant_url)
            try:  # its own schema, its own data
                await shop.execute(UPSERT_NAME, "Shop")
                assert await shop.fetchval("SELECT business_name FROM settings") == "Shop"
            finally:
                await shop.close()

            # The platform role: no roles, no schemas, no tenant data.
            async with platform.acquire() as conn:
                for attack in (
                    "CREATE ROLE evil LOGIN SUPERUSER",
                    "CREATE ROLE evil LOGIN",
                    f"ALTER ROLE \"{names.role}\" PASSWORD 'taken'",
                    "CREATE SCHEMA evil",
                    f'SELECT * FROM "{names.schema}".settings',
                    f'DROP SCHEMA "{names.schema}" CASCADE',
                    f'GRANT "{names.role}" TO "{inst.platform}"',
                ):
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(attack)
            # The provisioner: no control data (tokens, payments, owners).
            async with provisioner.acquire() as conn:
                for attack in (
                    "SELECT bot_token_enc FROM control.tenants",
                    "SELECT * FROM control.payments",
                    "UPDATE control.tenants SET status = 'active'",
                ):
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(attack)

            # The reconciler's guard works as the provisioner (pg_signal_backend), and spares it.
            shop = await asyncpg.connect(tenant_url)
            try:
                await shop.execute("SET statement_timeout = 0")
                sleeper = asyncio.create_task(shop.execute("SELECT pg_sleep(30)"))
                await asyncio.sleep(0.5)
                limits = TenantRoleLimits(statement_timeout_ms=100)
                async with provisioner.acquire() as conn:
                    killed = await terminate_runaway_backends(
                        conn, inst.tenant_prefix, limits, grace_ms=0
                    )
                assert [role for role, _ in killed] == [names.role]
                with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                    await sleeper
            finally:
                if not shop.is_closed():
                    await shop.close(timeout=2)

            await service.delete_now(slug, actor="test")  # drops the plane as the provisioner
            async with provisioner.acquire() as conn:
                assert not await conn.fetchval(
                    "SELECT 1 FROM pg_roles WHERE rolname = $1", names.role
                )
                assert not await conn.fetchval(
                    "SELECT 1 FROM pg_namespace WHERE nspname = $1", names.schema
                )
        finally:
            await service.drop_data_plane(slug)
    finally:
        await platform.close()
        await provisioner.close()


async def test_an_installation_from_before_the_roles_upgrades_in_place(
    installation: Installation, redis: Redis
) -> None:
    """The old layout: the platform role a superuser owning control and the tenant schemas. After
    roles.sql and upgrade-roles.sql it is no superuser, and the provisioner converges, migrates and
    drops the tenant it never made; the tenant keeps its data."""
    inst = installation
    admin = await asyncpg.connect(inst.superuser_url)
    try:
        await admin.execute(
            f"CREATE ROLE \"{inst.platform}\" LOGIN SUPERUSER PASSWORD '{inst.passwords[inst.platform]}'"
        )
    finally:
        await admin.close()
    box = SecretBox(generate_master_key())
    slug = "old" + secrets.token_hex(3)
    old = await create_pool(inst.platform_url, max_size=3)
    try:
        async with old.acquire() as conn:
            await install_platform(conn)
        await migrate_control(old)
        before = TenantService(pool=old, redis=redis, secrets=box, role_prefix=inst.tenant_prefix)
        await before.create(
            TenantCreate(slug=slug, display_name="Old", owner_telegram_ids=[1], bot_token=_token()),
            actor="test",
            provision_now=True,
            enqueue_provision=False,
        )
        tenant = await before.get(slug)
    finally:
        await old.close()
    names = before.names(slug)
    tenant_url = _url(
        inst.superuser_url, inst.database, names.role, box.decrypt(tenant.db_password_enc)
    )
    shop = await asyncpg.connect(tenant_url)
    try:
        await shop.execute(UPSERT_NAME, "Old shop")
    finally:
        await shop.close()

    await _apply(inst, ROLES_SQL)
    await _apply(inst, UPGRADE_SQL)
    await _apply(inst, UPGRADE_SQL)  # idempotent

    platform = await create_pool(inst.platform_url, max_size=3)
    provisioner = await create_pool(inst.provisioner_url, max_size=3)
    try:
        assert (
            await platform.fetchval(
                "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
            )
            is False
        )
        assert await migrate_control(platform) == []  # control is still the platform's
        service = TenantService(
            pool=platform,
            redis=redis,
            secrets=box,
            role_prefix=inst.tenant_prefix,
            provisioner=provisioner,
        )
        await service.ensure_data_plane(await service.get(slug))
        report = await migrate_tenants(provisioner, prefix=inst.tenant_prefix)
        assert not report.failed
        shop = await asyncpg.connect(tenant_url)
        try:
            assert await shop.fetchval("SELECT business_name FROM settings") == "Old shop"
            await shop.execute(UPSERT_NAME, "Still mine")
        finally:
            await shop.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await platform.execute(f'SELECT * FROM "{names.schema}".settings')
        await service.delete_now(slug, actor="test")
        assert not await provisioner.fetchval(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1", names.schema
        )
    finally:
        await platform.close()
        await provisioner.close()
