"""The tenant data plane: a tenant's own PostgreSQL role and schema and its own Redis ACL user.

Every operation converges: running it again after success changes nothing, and running it again after a
crash half-way finishes the job. The PostgreSQL part runs on the caller's connection, so a caller may
wrap it in its own transaction (creating a tenant row and its data plane all-or-nothing).

Isolation comes from privileges, not from the search path: the tenant role has rights on its own schema
only, ``search_path`` is set as a role default (so it survives PgBouncer's transaction pooling, whose
pools are per user) and PUBLIC has no rights on ``public``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from fleet.errors import ServiceUnavailable
from fleet.identifiers import (
    SLUG_PATTERN,
    legacy_redis_prefix,
    quote_ident,
    quote_literal,
    redis_prefix,
    tenant_role,
    tenant_schema,
    validate_prefix,
)
from fleet.migrations import Migration, load_migrations, migrate_schema

if TYPE_CHECKING:
    from fleet.settings import Settings

log = logging.getLogger(__name__)

# The tenant's Redis ACL is an allowlist: exactly the commands the tenant bot sends, on its own key
# pattern (``~<prefix>*``) and channel pattern (``&<prefix>*``); everything else (scripting, client
# tracking and listing, keyless and admin commands, blocking and dangerous ones) is refused with NOPERM.
# ``AUTH`` and ``HELLO`` need no permission (Redis lets every user run them).
TENANT_REDIS_COMMANDS = (
    # redis-py's connection health checks (``health_check_interval``) and start-up check
    "ping",
    # aiogram's RedisStorage (FSM state and data: GET, SET ... EX, DEL), the heartbeat
    # (SET ... EX, SET ... XX KEEPTTL, DEL; ``--check-health`` GETs it), delivery marks and
    # "sent once" keys (SET ... NX EX), the throttle (SET NX EX, INCRBY, TTL in MULTI/EXEC)
    "get",
    "set",
    "del",
    "mget",
    "incrby",  # redis-py sends INCR as INCRBY key 1
    "ttl",
    "pttl",
    # the users' chosen locales and the owners' Telegram languages
    "hget",
    "hset",
    # the throttle's transaction (redis-py discards a transaction that failed to queue)
    "multi",
    "exec",
    "discard",
    # pub/sub on its own channels only (``&<prefix>*``)
    "publish",
    "subscribe",
    "unsubscribe",
)
# redis-py 8 opens every connection with HELLO 3, then CLIENT MAINT_NOTIFICATIONS and CLIENT SETINFO,
# ignoring an error from either; a refusal would still put one denial per connection in the ACL log.
# Both touch only the caller's own connection. Each is allowed where the server accepts the rule:
# Redis 7 rejects a rule naming a subcommand it lacks (the command then answers "unknown subcommand"
# before any ACL check), Redis 6.2 takes it as a first-argument rule.
TENANT_REDIS_HANDSHAKE = ("client|setinfo", "client|maint_notifications")


def tenant_redis_rules(db: int, *, password: str, prefix: str) -> list[str]:
    """``ACL SETUSER`` rules for a tenant user, the same on Redis 6.2 and 7 (plus
    :data:`TENANT_REDIS_HANDSHAKE` where the server knows them).

    ``reset`` comes first, so applying them converts a user made by any earlier version (the old
    ``+@all`` minus a denylist) instead of adding to it. ``SELECT`` is allowed for the platform's
    database only (redis-py sends it on connect when the URL names a database other than 0).
    """
    commands = [*TENANT_REDIS_COMMANDS, f"select|{db}"]
    return [
        "reset",
        "resetchannels",
        "on",
        f">{password}",
        f"~{prefix}*",
        f"&{prefix}*",
        "-@all",
        *(f"+{command}" for command in commands),
    ]


@dataclass(frozen=True)
class TenantRoleLimits:
    """What one tenant role may take of the shared PostgreSQL (role defaults, re-applied on every
    provision). ``statement_timeout`` and ``idle_in_transaction_session_timeout`` are only defaults:
    a tenant may ``SET`` them in its session, so :func:`terminate_runaway_backends` enforces them
    from the platform's side. ``temp_file_limit`` is superuser-only: the tenant cannot change it,
    and the platform can set it only as a superuser or with ``GRANT SET ON PARAMETER temp_file_limit``
    (PostgreSQL 15+); otherwise it is skipped with a warning. The connection limit is enforced by
    PostgreSQL itself."""

    # The booking core's longest statement (a year's export, a book_slots batch waiting on another
    # batch's staff locks) takes well under a second; the tenant bot's client timeout is 30 s.
    statement_timeout_ms: int = 10_000
    # The booking core holds transactions only around its own statements (never across Telegram).
    idle_in_transaction_timeout_ms: int = 30_000
    temp_file_limit_kb: int = 256 * 1024  # -1: no limit
    # The tenant bot's pool (5) twice (a redeploy overlaps the old and the new bot) plus 2.
    connection_limit: int = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantRoleLimits:
        return cls(
            statement_timeout_ms=int(settings.tenant_statement_timeout_s * 1000),
            idle_in_transaction_timeout_ms=int(
                settings.tenant_idle_in_transaction_timeout_s * 1000
            ),
            temp_file_limit_kb=(
                -1
                if settings.tenant_temp_file_limit_mb < 0
                else settings.tenant_temp_file_limit_mb * 1024
            ),
            connection_limit=settings.tenant_connection_limit,
        )


DEFAULT_ROLE_LIMITS = TenantRoleLimits()

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
        return cls(slug, tenant_schema(slug, prefix), role, role, redis_prefix(slug, prefix))


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
    limits: TenantRoleLimits = DEFAULT_ROLE_LIMITS,
) -> list[str]:
    """Role, schema, grants, resource limits and tenant migrations; returns the migration versions
    applied now."""
    role, schema = quote_ident(names.role), quote_ident(names.schema)
    database = await conn.fetchval("SELECT current_database()")
    owner = await conn.fetchval("SELECT current_user")
    async with conn.transaction():
        # Serialises concurrent provisioning of one slug (CREATE ROLE has no IF NOT EXISTS).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _tenant_lock_key(names.slug))
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", names.role)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(
            f"{verb} ROLE {role} LOGIN NOINHERIT NOCREATEDB NOCREATEROLE"
            f" PASSWORD {quote_literal(password)}"
        )
        # Role defaults are exactly ours: an ordinary role may set its own (ALTER ROLE ... SET).
        await conn.execute(f"ALTER ROLE {role} RESET ALL")
        await conn.execute(f"ALTER ROLE {role} SET search_path = {schema}")
        await apply_role_limits(conn, names.role, limits)
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


_temp_file_limit_warned = False


async def apply_role_limits(
    conn: asyncpg.Connection, role_name: str, limits: TenantRoleLimits
) -> None:
    """Set (or reset) the role's connection limit and session defaults; run inside a transaction.

    Settings a tenant gave itself (``ALTER ROLE ... [IN DATABASE ...] SET``: an ordinary role may set
    its own defaults) are dropped first, so every provision restores exactly these."""
    global _temp_file_limit_warned
    role = quote_ident(role_name)
    await conn.execute(f"ALTER ROLE {role} CONNECTION LIMIT {int(limits.connection_limit)}")
    database = quote_ident(await conn.fetchval("SELECT current_database()"))
    await conn.execute(f"ALTER ROLE {role} IN DATABASE {database} RESET ALL")
    for name, value in (
        ("statement_timeout", limits.statement_timeout_ms),
        ("idle_in_transaction_session_timeout", limits.idle_in_transaction_timeout_ms),
    ):
        await conn.execute(f"ALTER ROLE {role} SET {name} = {int(value)}")
    # A tenant's queries are small OLTP ones that JIT compilation only slows down. asyncpg turns JIT
    # off for its type introspection with a session SET, which behind a transaction pooler lands on
    # one server connection while the introspection runs on another: compiled there, it took ~0.3 s
    # of CPU per new connection (4-5 s for 24 at once on 2 cores). Off for the role, it is off on all.
    await conn.execute(f"ALTER ROLE {role} SET jit = off")
    try:
        async with conn.transaction():  # a savepoint: refused to a role without SET on it
            await conn.execute(
                f"ALTER ROLE {role} SET temp_file_limit = {int(limits.temp_file_limit_kb)}"
            )
    except asyncpg.InsufficientPrivilegeError:
        if not _temp_file_limit_warned:
            _temp_file_limit_warned = True
            log.warning(
                "temp_file_limit not set on tenant roles: it needs a superuser or "
                "GRANT SET ON PARAMETER temp_file_limit TO the role that provisions tenants "
                "(PostgreSQL 15+; ops/postgres/roles.sql does)"
            )


async def terminate_runaway_backends(
    conn: asyncpg.Connection,
    role_prefix: str,
    limits: TenantRoleLimits = DEFAULT_ROLE_LIMITS,
    *,
    grace_ms: int = 5_000,
) -> list[tuple[str, int]]:
    """Terminate tenant backends running one statement, or idle in a transaction, for longer than
    ``limits`` allow (plus ``grace_ms``): the role defaults are only defaults, a tenant can ``SET``
    them away. Returns (role, pid) of each backend terminated. Tenant roles are the roles named
    ``<role_prefix><slug>`` without access to the ``control`` schema."""
    rows = await conn.fetch(
        """
        SELECT a.usename, a.pid, pg_terminate_backend(a.pid) AS terminated
        FROM pg_stat_activity a
        JOIN pg_roles r ON r.oid = a.usesysid
        WHERE a.datname = current_database()
          AND a.pid <> pg_backend_pid()
          AND starts_with(r.rolname, $1)
          AND substr(r.rolname, length($1) + 1) ~ $2
          AND NOT r.rolsuper
          AND NOT r.rolcreaterole  -- the provisioning role, never a tenant's
          AND NOT has_schema_privilege(r.oid, 'control', 'USAGE')
          AND (
            (a.state = 'active'
             AND a.query_start < now() - make_interval(secs => $3::float8 / 1000))
            OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
             AND a.state_change < now() - make_interval(secs => $4::float8 / 1000))
          )
        """,
        validate_prefix(role_prefix),
        SLUG_PATTERN,
        limits.statement_timeout_ms + grace_ms,
        limits.idle_in_transaction_timeout_ms + grace_ms,
    )
    killed = [(r["usename"], r["pid"]) for r in rows if r["terminated"]]
    for role, pid in killed:
        log.warning("terminated a runaway tenant backend", extra={"role": role, "pid": pid})
    return killed


class PlatformSenders:
    """Tells NOTIFYs sent by the platform from those sent by tenant roles.

    PostgreSQL lets any role that can connect ``LISTEN`` and ``NOTIFY`` on any channel, and asyncpg
    hands listeners the sender's backend pid. A sender is the platform when its role can use the
    ``control`` schema (every session that changes ``control.tenants`` or ``control.jobs``, whose
    triggers notify, can; a tenant role cannot). Verdicts are kept per pid: a platform backend for
    ``positive_ttl_s`` (pools keep their connections), anything else for ``negative_ttl_s`` only, so
    a pid reused by a new backend is looked up again. A sender whose backend is already gone when
    looked up cannot be verified: :meth:`check` answers ``None`` and each listener decides.
    """

    QUERY = (
        "SELECT COALESCE(has_schema_privilege(usesysid, 'control', 'USAGE'), false)"
        " FROM pg_stat_activity WHERE pid = $1"
    )

    def __init__(
        self,
        *,
        positive_ttl_s: float = 60.0,
        negative_ttl_s: float = 2.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._positive_ttl_s = positive_ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._verdicts: dict[int, tuple[bool, float]] = {}
        self._lock = asyncio.Lock()

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a look-up runs on the caller's connection (share it with other uses of it)."""
        return self._lock

    def known(self, pid: int) -> bool | None:
        """The cached verdict for ``pid``, if fresh."""
        verdict = self._verdicts.get(pid)
        if verdict is None:
            return None
        if verdict[1] < self._clock():
            del self._verdicts[pid]
            return None
        return verdict[0]

    async def check(
        self, conn: asyncpg.Connection, pid: int, *, timeout: float = 2.0
    ) -> bool | None:
        """Whether ``pid`` is a backend of a platform role; ``None`` when it is gone (the sender
        disconnected before the look-up). Raises what the connection raises."""
        cached = self.known(pid)
        if cached is not None:
            return cached
        async with self._lock:
            cached = self.known(pid)
            if cached is not None:
                return cached
            rows = await conn.fetch(self.QUERY, pid, timeout=timeout)
        if not rows:
            return None
        platform = bool(rows[0][0])
        if len(self._verdicts) >= self._max_entries:
            self._verdicts.clear()
        ttl = self._positive_ttl_s if platform else self._negative_ttl_s
        self._verdicts[pid] = (platform, self._clock() + ttl)
        return platform


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
            if not await conn.fetchval(
                "SELECT rolsuper OR pg_has_role(current_user, $1, 'USAGE')"
                " FROM pg_roles WHERE rolname = current_user",
                names.role,
            ):
                # A provisioning role (CREATEROLE, no superuser) needs the tenant role's privileges
                # to drop what it owns; it may grant them to itself, and they go with the role.
                await conn.execute(f"GRANT {role} TO {quote_ident(await _current_user(conn))}")
            await conn.execute(f"DROP OWNED BY {role}")
            await conn.execute(f"DROP ROLE {role}")


async def _current_user(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT current_user"))


async def ensure_redis_user(redis: Redis, names: TenantNames, *, password: str) -> None:
    """Create or reset the tenant's Redis ACL user: the tenant bot's commands on its own keys and
    channels, nothing else (:func:`tenant_redis_rules`)."""
    try:
        db = int(redis.connection_pool.connection_kwargs.get("db") or 0)
        rules = tenant_redis_rules(db, password=password, prefix=names.redis_prefix)
        await redis.execute_command("ACL", "SETUSER", names.redis_user, *rules)
        for subcommand in TENANT_REDIS_HANDSHAKE:
            try:  # one call each: a rule the server does not know changes nothing
                await redis.execute_command("ACL", "SETUSER", names.redis_user, f"+{subcommand}")
            except ResponseError as exc:
                if "Unknown command" not in str(exc):
                    raise
        await _persist_acl(redis)
    except RedisError as exc:
        raise ServiceUnavailable(f"cannot create Redis ACL user {names.redis_user}: {exc}") from exc


async def drop_redis_user(redis: Redis, names: TenantNames, *, legacy: bool = False) -> int:
    """Delete the ACL user (closing its connections) and every key under the tenant prefix (and
    under its pre-installation-prefix one with ``legacy``: keys not moved yet)."""
    try:
        await redis.execute_command("ACL", "DELUSER", names.redis_user)
        await _persist_acl(redis)
        deleted = 0
        prefixes = [names.redis_prefix, *([legacy_redis_prefix(names.slug)] if legacy else [])]
        for prefix in prefixes:
            batch: list[bytes | str] = []
            async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += await redis.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += await redis.unlink(*batch)
        return deleted
    except RedisError as exc:
        raise ServiceUnavailable(f"cannot remove Redis ACL user {names.redis_user}: {exc}") from exc


async def move_legacy_keys(redis: Redis, names: TenantNames) -> int:
    """Move a tenant's keys from before installation prefixes (``t:<slug>:``) under its prefix;
    a key already present under the new prefix (written since) is kept and the old one dropped.
    Idempotent; returns how many keys moved."""
    legacy = legacy_redis_prefix(names.slug)
    moved = 0
    try:
        async for raw in redis.scan_iter(match=f"{legacy}*", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            target = names.redis_prefix + key[len(legacy) :]
            try:
                if await redis.renamenx(key, target):
                    moved += 1
                else:
                    await redis.unlink(key)
            except ResponseError as exc:  # gone between SCAN and RENAME
                if "no such key" not in str(exc).lower():
                    raise
    except RedisError as exc:
        raise ServiceUnavailable(f"cannot move the Redis keys of {names.slug}: {exc}") from exc
    return moved


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
