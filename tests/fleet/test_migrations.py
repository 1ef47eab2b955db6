"""The migration runner: ordering, checksums, locking, parallel fleets, failure reports."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import pytest

from fleet.errors import MigrationError
from fleet.identifiers import quote_ident
from fleet.migrations import (
    Migration,
    digest,
    load_migrations,
    migrate_schema,
    migrate_tenants,
    pending_tenant_schemas,
)


def make(version: str, sql: str) -> Migration:
    return Migration(version, sql, hashlib.sha256(sql.encode()).hexdigest())


FIRST = make("0001_items", "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);")
SECOND = make("0002_items_price", "ALTER TABLE items ADD COLUMN price numeric NOT NULL DEFAULT 0;")


async def drop_schemas(pool: asyncpg.Pool, prefix: str) -> None:
    async with pool.acquire() as conn:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix
        )
        for row in names:
            await conn.execute(f"DROP SCHEMA {quote_ident(row['nspname'])} CASCADE")


@pytest.fixture
async def prefix(pool: asyncpg.Pool, role_prefix: str):
    yield role_prefix
    await drop_schemas(pool, role_prefix)


def test_shipped_migrations_are_well_formed() -> None:
    for kind in ("control", "tenant"):
        migrations = load_migrations(kind)
        versions = [m.version for m in migrations]
        assert versions == sorted(versions)
        assert len(set(versions)) == len(versions)
    assert load_migrations("control")[0].version == "0001_control"


async def test_applies_in_order_once_and_records_checksums(pool: asyncpg.Pool, prefix: str) -> None:
    schema = prefix + "one"
    async with pool.acquire() as conn:
        assert await migrate_schema(conn, schema, [FIRST, SECOND]) == [
            FIRST.version,
            SECOND.version,
        ]
        assert await migrate_schema(conn, schema, [FIRST, SECOND]) == []
        rows = await conn.fetch(
            f"SELECT version, checksum FROM {quote_ident(schema)}.schema_migrations ORDER BY 1"
        )
        assert [(r["version"], r["checksum"]) for r in rows] == [
            (FIRST.version, FIRST.checksum),
            (SECOND.version, SECOND.checksum),
        ]
        comment = await conn.fetchval(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
            schema,
        )
        assert comment == digest([FIRST, SECOND])


async def test_edited_applied_file_is_an_error(pool: asyncpg.Pool, prefix: str) -> None:
    schema = prefix + "edited"
    edited = make(FIRST.version, FIRST.sql + " -- edited")
    async with pool.acquire() as conn:
        await migrate_schema(conn, schema, [FIRST])
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate_schema(conn, schema, [edited, SECOND])
        # nothing after the bad file ran
        assert not await conn.fetchval(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = $1"
            " AND table_name = 'items' AND column_name = 'price'",
            schema,
        )


async def test_failing_file_rolls_back_alone_and_names_schema_and_file(
    pool: asyncpg.Pool, prefix: str
) -> None:
    schema = prefix + "broken"
    broken = make("0002_broken", "ALTER TABLE items ADD COLUMN x int; SELECT no_such_function();")
    async with pool.acquire() as conn:
        with pytest.raises(MigrationError, match=rf"{schema}: migration 0002_broken.sql failed"):
            await migrate_schema(conn, schema, [FIRST, broken])
        applied = await conn.fetch(f"SELECT version FROM {quote_ident(schema)}.schema_migrations")
        assert [r["version"] for r in applied] == [FIRST.version]
        assert not await conn.fetchval(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'x'",
            schema,
        )


async def test_concurrent_runners_do_not_collide(pool: asyncpg.Pool, prefix: str) -> None:
    schema = prefix + "race"
    slow = make("0003_slow", "SELECT pg_sleep(0.2); CREATE TABLE slow (id int);")

    async def runner() -> list[str]:
        async with pool.acquire() as conn:
            return await migrate_schema(conn, schema, [FIRST, SECOND, slow])

    results = await asyncio.gather(*(runner() for _ in range(6)))
    applied = sorted(v for result in results for v in result)
    assert applied == [FIRST.version, SECOND.version, slow.version]


async def test_fleet_of_200_migrates_in_parallel_and_reports_failures(
    pool: asyncpg.Pool, prefix: str
) -> None:
    schemas = [f"{prefix}s{i:03d}" for i in range(200)]
    async with pool.acquire() as conn:
        for schema in schemas:
            await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        # one schema already has a conflicting table: its first migration must fail
        await conn.execute(f"CREATE TABLE {quote_ident(schemas[7])}.items (other int)")

    progress: list[tuple[str, str | None]] = []
    report = await migrate_tenants(
        pool,
        prefix=prefix,
        concurrency=8,
        migrations=[FIRST, SECOND],
        on_progress=lambda s, e: progress.append((s, e)),
    )
    assert set(report.failed) == {schemas[7]}
    assert "0001_items" in report.failed[schemas[7]]
    assert len(report.migrated) == 199
    assert len(progress) == 200

    pending, current = await pending_tenant_schemas(pool, prefix, [FIRST, SECOND])
    assert pending == [schemas[7]]
    assert len(current) == 199

    # a no-op run touches nothing but the catalog; a new file reaches every healthy schema
    again = await migrate_tenants(pool, prefix=prefix, migrations=[FIRST, SECOND])
    assert len(again.up_to_date) == 199 and set(again.failed) == {schemas[7]}
    third = make("0003_items_note", "ALTER TABLE items ADD COLUMN note text;")
    grown = await migrate_tenants(pool, prefix=prefix, migrations=[FIRST, SECOND, third])
    assert len(grown.migrated) == 199
    assert all(v == [third.version] for v in grown.migrated.values())
