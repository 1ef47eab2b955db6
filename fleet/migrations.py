"""The migration runner: ``migrations/control/*.sql`` for the ``control`` schema and
``migrations/tenant/*.sql`` for every tenant schema.

- Files apply in name order (``0001_init.sql``, ``0002_...``), each in its own transaction, recorded in
  a ``schema_migrations`` table of the schema with its SHA-256; an applied file whose content changed is
  an error, never a silent skip.
- Repeatable files (``<kind>/repeatable/<name>.sql``: ``CREATE OR REPLACE`` definitions of SQL
  functions) apply after the numbered ones, again whenever their content changes (recorded as
  ``R:<name>``). A function lives in one file, edited in place; a numbered file only creates what the
  function needs (a table, a type) or drops what it no longer does.
- A transaction-level advisory lock per schema means two runners never apply the same file twice: the
  second waits, then sees the file recorded.
- Each schema's comment holds a digest of what is applied, so one catalog query finds every schema that is
  already up to date and the runner skips it without opening it (a no-op over thousands of schemas costs
  one query).
- Tenant schemas migrate in parallel with bounded concurrency; a failing schema is reported with its
  error and never stops the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources

import asyncpg

from fleet.db import Executor
from fleet.errors import MigrationError
from fleet.identifiers import quote_ident, quote_literal

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
_REPEATABLE_RE = re.compile(r"^[a-z][a-z0-9_]*\.sql$")
REPEATABLE_PREFIX = "R:"
_DIGEST_PREFIX = "botfleet:migrations:"
VERSIONS_TABLE = "schema_migrations"


@dataclass(frozen=True)
class Migration:
    version: str  # the file name without ".sql"; "R:<name>" for a repeatable file
    sql: str
    checksum: str

    @property
    def repeatable(self) -> bool:
        return self.version.startswith(REPEATABLE_PREFIX)

    @property
    def file_name(self) -> str:
        if self.repeatable:
            return f"repeatable/{self.version.removeprefix(REPEATABLE_PREFIX)}.sql"
        return f"{self.version}.sql"


@dataclass
class MigrationReport:
    """What a run over many schemas did: schemas skipped, applied versions, and failures."""

    up_to_date: list[str] = field(default_factory=list)
    migrated: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def total(self) -> int:
        return len(self.up_to_date) + len(self.migrated) + len(self.failed)


def load_migrations(kind: str) -> list[Migration]:
    """The migrations of ``kind`` ("control" or "tenant") shipped in the ``migrations`` package:
    the numbered files in order, then the repeatable ones in name order."""
    if kind not in ("control", "tenant"):
        raise ValueError(f"unknown migration kind {kind!r}")
    folder = resources.files("migrations").joinpath(kind)
    numbered, repeatable = [], []
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        if not _FILE_RE.fullmatch(name):
            raise MigrationError(
                f"migrations/{kind}/{name}: file names must look like 0001_short_name.sql"
            )
        numbered.append(_migration(name[:-4], entry.read_text(encoding="utf-8")))
    extra = folder.joinpath("repeatable")
    for entry in extra.iterdir() if extra.is_dir() else ():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        if not _REPEATABLE_RE.fullmatch(name):
            raise MigrationError(
                f"migrations/{kind}/repeatable/{name}: file names must look like short_name.sql"
            )
        sql = entry.read_text(encoding="utf-8")
        repeatable.append(_migration(REPEATABLE_PREFIX + name[:-4], sql))
    key = lambda m: m.version  # noqa: E731
    return sorted(numbered, key=key) + sorted(repeatable, key=key)


def _migration(version: str, sql: str) -> Migration:
    return Migration(version, sql, hashlib.sha256(sql.encode()).hexdigest())


def digest(migrations: Iterable[Migration]) -> str:
    """A digest of a set of applied (version, checksum) pairs."""
    h = hashlib.sha256()
    for m in sorted(migrations, key=lambda m: m.version):
        h.update(f"{m.version}:{m.checksum}\n".encode())
    return _DIGEST_PREFIX + h.hexdigest()[:32]


def _lock_key(schema: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True
    )


async def migrate_schema(
    conn: asyncpg.Connection,
    schema: str,
    migrations: list[Migration],
    *,
    create_schema: bool = True,
) -> list[str]:
    """Bring ``schema`` up to date on ``conn``; return the versions applied now.

    Raises :class:`MigrationError` naming the schema and file on a checksum mismatch or SQL error;
    files applied before the failure stay applied (each is its own transaction)."""
    q = quote_ident(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
        if create_schema and not await conn.fetchval(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema
        ):  # asked only when missing: a role that owns the schema needs no CREATE on the database
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {q}.{VERSIONS_TABLE} ("
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    applied_now: list[str] = []
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
            recorded = await conn.fetch(f"SELECT version, checksum FROM {q}.{VERSIONS_TABLE}")
            known = {r["version"]: r["checksum"] for r in recorded}
            if known.get(migration.version) == migration.checksum:
                continue
            if migration.version in known and not migration.repeatable:
                raise MigrationError(
                    f"schema {schema}: migration {migration.file_name} was edited after it was "
                    "applied (checksum mismatch); add a new migration file instead of editing it"
                )
            await conn.execute(f"SET LOCAL search_path TO {q}, public")
            try:
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"schema {schema}: migration {migration.file_name} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            await conn.execute(
                f"INSERT INTO {q}.{VERSIONS_TABLE} (version, checksum) VALUES ($1, $2)"
                " ON CONFLICT (version) DO UPDATE"
                " SET checksum = EXCLUDED.checksum, applied_at = now()",
                migration.version,
                migration.checksum,
            )
            # What is applied as it is now (a repeatable file applied in an older version is not).
            applied = [m for m in migrations if known.get(m.version) == m.checksum] + [migration]
            await conn.execute(f"COMMENT ON SCHEMA {q} IS {quote_literal(digest(applied))}")
            applied_now.append(migration.version)
    unknown = await _unknown_versions(conn, schema, migrations)
    if unknown:
        log.warning(
            "schema has migrations this code does not know",
            extra={"schema": schema, "versions": unknown},
        )
    return applied_now


async def _unknown_versions(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[str]:
    rows = await conn.fetch(f"SELECT version FROM {quote_ident(schema)}.{VERSIONS_TABLE}")
    known = {m.version for m in migrations}
    return sorted(r["version"] for r in rows if r["version"] not in known)


async def recorded_checksums(db: Executor, schema: str = "control") -> dict[str, str]:
    """Version -> checksum of every migration recorded in ``schema`` (raises
    ``asyncpg.UndefinedTableError`` when the schema was never migrated)."""
    rows = await db.fetch(f"SELECT version, checksum FROM {quote_ident(schema)}.{VERSIONS_TABLE}")
    return {r["version"]: r["checksum"] for r in rows}


async def migrate_control(pool: asyncpg.Pool) -> list[str]:
    """Apply ``migrations/control`` to the ``control`` schema; return the versions applied."""
    async with pool.acquire() as conn:
        return await migrate_schema(conn, "control", load_migrations("control"))


async def schema_states(conn: asyncpg.Connection, prefix: str) -> dict[str, str | None]:
    """Every schema whose name starts with ``prefix``, with its migration digest — one catalog query."""
    rows = await conn.fetch(
        "SELECT nspname, obj_description(oid, 'pg_namespace') AS digest FROM pg_namespace"
        " WHERE starts_with(nspname, $1) ORDER BY nspname",
        prefix,
    )
    return {r["nspname"]: r["digest"] for r in rows}


async def pending_tenant_schemas(
    pool: asyncpg.Pool, prefix: str, migrations: list[Migration] | None = None
) -> tuple[list[str], list[str]]:
    """(schemas that need migrating, schemas already up to date) among those named ``prefix*``."""
    migrations = load_migrations("tenant") if migrations is None else migrations
    target = digest(migrations)
    async with pool.acquire() as conn:
        states = await schema_states(conn, prefix)
    pending = [s for s, d in states.items() if d != target]
    current = [s for s, d in states.items() if d == target]
    return pending, current


async def migrate_tenants(
    pool: asyncpg.Pool,
    *,
    prefix: str,
    schemas: list[str] | None = None,
    concurrency: int = 8,
    migrations: list[Migration] | None = None,
    on_progress: Callable[[str, str | None], None] | None = None,
) -> MigrationReport:
    """Migrate tenant schemas in parallel.

    With ``schemas`` None, every schema named ``prefix*`` is considered. Up-to-date schemas are found
    with one catalog query and skipped. ``on_progress(schema, error_or_None)`` is called as each
    schema finishes (for progress bars). Failures are collected in the report, never raised."""
    migrations = load_migrations("tenant") if migrations is None else migrations
    target = digest(migrations)
    async with pool.acquire() as conn:
        states = await schema_states(conn, prefix)
    report = MigrationReport()
    wanted = list(states) if schemas is None else schemas
    todo = []
    for schema in wanted:
        if states.get(schema) == target:
            report.up_to_date.append(schema)
        else:
            todo.append(schema)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(schema: str) -> None:
        async with semaphore:
            try:
                async with pool.acquire() as conn:
                    applied = await migrate_schema(conn, schema, migrations)
            except (MigrationError, asyncpg.PostgresError, OSError) as exc:
                report.failed[schema] = str(exc)
                log.error(
                    "tenant schema migration failed", extra={"schema": schema, "error": str(exc)}
                )
                if on_progress:
                    on_progress(schema, str(exc))
                return
            if applied:
                report.migrated[schema] = applied
            else:
                report.up_to_date.append(schema)
            if on_progress:
                on_progress(schema, None)

    await asyncio.gather(*(one(schema) for schema in todo))
    return report
