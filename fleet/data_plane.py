"""The tenant data plane: a tenant's own PostgreSQL role and schema and its own Redis ACL user.

Every operation converges: running it again after success changes nothing, and running it again after a
crash half-way finishes the job. The PostgreSQL part runs on the caller's connection, so a caller may
wrap it in its own transaction (creating a tenant row and its data plane all-or-nothing).

Isolation comes from privileges, not from the search path: the tenant role has rights on its own schema
only, ``search_path`` is set as a role default (so it survives PgBouncer's transaction pooling, whose
pools are per user) and PUBLIC has no rights on ``public``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from fleet.errors import ServiceUnavailable
from fleet.identifiers import quote_ident, quote_literal, redis_prefix, tenant_role, tenant_schema
from fleet.migrations import Migration, load_migrations, migrate_schema

log = logging.getLogger(__name__)

# Keyless commands are not covered by key patterns, and some commands reach across tenants.
DENIED_REDIS_COMMANDS = (
    "-@dangerous",
    "-@admin",
    "-keys",
    "-scan",
    "-randomkey",
    "-flushall",
    "-flushdb",
    "-swapdb",
    "-config",
    "-debug",
    "-shutdown",
    "-monitor",
    "-acl",
    "-module",
    "-pubsub",
    "-migrate",
    "-move",
    "-object",
    "-info",
    "-dbsize",
    "-lastsave",
    "-save",
    "-bgsave",
    "-bgrewriteaof",
    "-failover",
    "-replicaof",
    "-slaveof",
    "-sync",
    "-psync",
    "-cluster",
    "-latency",
    "-memory",
    "-slowlog",
    "-wait",
)
# Rules Redis 7 understands (FUNCTION and subcommand denial); Redis 6.2 rejects them.
DENIED_REDIS7_COMMANDS = ("-function", "-script|flush")


_DATABASE_ACL_LOCK = int.from_bytes(
    hashlib.sha256(b"database-acl").digest()[:8], "big", signed=True
)


@dataclass(frozen=True)
class TenantNames:
    """The names a tenant's data plane lives under."""

    slug: str
    schema: str
    role: str
    redis_user: str
    redis_prefix: str

    @classmethod
    def of(cls, slug: str, prefix: str = "tenant_") -> TenantNames:
        role = tenant_role(slug, prefix)
        return cls(slug, tenant_schema(slug, prefix), role, role, redis_prefix(slug))


def _tenant_lock_key(slug: str) -> int:
    """An advisory lock key per tenant slug (serialises provisioning of one tenant)."""
    raw = hashlib.sha256(f"tenant:{slug}".encode()).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)


async def install_platform(conn: asyncpg.Connection) -> None:
    """Once per database: extensions tenants need, and PUBLIC's rights on ``public`` revoked."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _tenant_lock_key("__platform__"))
        # btree_gist is welcome where the server ships it; the tenant schema does not depend on it
        # (embedded PostgreSQL builds come without contrib).
        if await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist'"):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")


async def ensure_database_plane(
    conn: asyncpg.Connection,
    names: TenantNames,
    *,
    password: str,
    migrations: list[Migration] | None = None,
) -> list[str]:
    """Role, schema, grants and tenant migrations; returns the migration versions applied now."""
    role, schema = quote_ident(names.role), quote_ident(names.schema)
    database = await conn.fetchval("SELECT current_database()")
    owner = await conn.fetchval("SELECT current_user")
    async with conn.transaction():
        # Serialises concurrent provisioning of one slug (CREATE ROLE has no IF NOT EXISTS).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _tenant_lock_key(names.slug))
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", names.role)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(
            f"{verb} ROLE {role} LOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT 20"
            f" PASSWORD {quote_literal(password)}"
        )
        await conn.execute(f"ALTER ROLE {role} SET search_path = {schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        if not await conn.fetchval(
            "SELECT has_database_privilege($1, current_database(), 'CONNECT')", names.role
        ):
            # Only where PUBLIC's CONNECT was revoked (hardened installs). Database ACL changes are
            # serialised: concurrent GRANTs on one pg_database row fail with "tuple concurrently updated".
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DATABASE_ACL_LOCK)
            await conn.execute(f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {role}")
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        # Tables the platform creates later (migrations) are granted automatically.
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(owner)} IN SCHEMA {schema}"
            f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(owner)} IN SCHEMA {schema}"
            f" GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}"
        )
    applied = await migrate_schema(
        conn, names.schema, load_migrations("tenant") if migrations is None else migrations
    )
    async with conn.transaction():
        # Covers tables created before the default privileges existed (a crash between the steps).
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
        )
        await conn.execute(
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"
        )
        await conn.execute(f"REVOKE ALL ON {schema}.schema_migrations FROM {role}")
    return applied


async def drop_database_plane(conn: asyncpg.Connection, names: TenantNames) -> None:
    """Drop the tenant's schema and role (its sessions are terminated first)."""
    role, schema = quote_ident(names.role), quote_ident(names.schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _tenant_lock_key(names.slug))
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _tenant_lock_key(names.slug))
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", names.role):
            # DROP OWNED revokes database-level grants too: serialised like the GRANT above.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DATABASE_ACL_LOCK)
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                names.role,
            )
            await conn.execute(f"DROP OWNED BY {role}")
            await conn.execute(f"DROP ROLE {role}")


async def ensure_redis_user(redis: Redis, names: TenantNames, *, password: str) -> None:
    """Create or reset the tenant's Redis ACL user: its own keys and channels, nothing keyless."""
    try:
        info = await redis.info("server")
        major = int(str(info.get("redis_version", "7")).split(".")[0])
        await redis.execute_command(
            "ACL",
            "SETUSER",
            names.redis_user,
            "reset",
            "resetchannels",
            "on",
            f">{password}",
            f"~{names.redis_prefix}*",
            f"&{names.redis_prefix}*",
            "+@all",
            *DENIED_REDIS_COMMANDS,
            *(DENIED_REDIS7_COMMANDS if major >= 7 else ()),
        )
        await _persist_acl(redis)
    except RedisError as exc:
        raise ServiceUnavailable(f"cannot create Redis ACL user {names.redis_user}: {exc}") from exc


async def drop_redis_user(redis: Redis, names: TenantNames) -> int:
    """Delete the ACL user (closing its connections) and every key under the tenant prefix."""
    try:
        await redis.execute_command("ACL", "DELUSER", names.redis_user)
        await _persist_acl(redis)
        deleted = 0
        batch: list[bytes | str] = []
        async for key in redis.scan_iter(match=f"{names.redis_prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await redis.unlink(*batch)
        return deleted
    except RedisError as exc:
        raise ServiceUnavailable(f"cannot remove Redis ACL user {names.redis_user}: {exc}") from exc


async def _persist_acl(redis: Redis) -> None:
    """Write ACL users to the server's ACL file, where one is configured, so they survive restarts."""
    try:
        await redis.execute_command("ACL", "SAVE")
    except RedisError as exc:
        if "ACL file" not in str(exc):  # "This Redis instance is not configured to use an ACL file"
            raise


async def redis_user_exists(redis: Redis, names: TenantNames) -> bool:
    users = await redis.execute_command("ACL", "USERS")
    return any((u.decode() if isinstance(u, bytes) else u) == names.redis_user for u in users)
