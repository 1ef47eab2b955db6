"""Repeatable migrations: SQL functions written once, re-applied when their file changes (issue 15)."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from fleet.errors import MigrationError
from fleet.identifiers import quote_ident
from fleet.migrations import (
    REPEATABLE_PREFIX,
    Migration,
    digest,
    load_migrations,
    migrate_schema,
    schema_states,
)


def make(version: str, sql: str) -> Migration:
    return Migration(version, sql, hashlib.sha256(sql.encode()).hexdigest())


TABLE = make("0001_items", "CREATE TABLE items (id int PRIMARY KEY);")


def function(answer: int) -> Migration:
    return make(
        REPEATABLE_PREFIX + "answer",
        f"CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql RETURN {answer};",
    )


@pytest.fixture
async def schema(pool: asyncpg.Pool, role_prefix: str):
    name = role_prefix + "rep"
    yield name
    await pool.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")


async def _digest_of(conn: asyncpg.Connection, schema: str) -> str | None:
    return (await schema_states(conn, schema))[schema]


def test_the_booking_functions_live_in_one_repeatable_file_applied_last() -> None:
    tenant = load_migrations("tenant")
    repeatable = [m for m in tenant if m.repeatable]
    assert [m.version for m in repeatable] == ["R:booking"]
    assert tenant[-1].repeatable and all(not m.repeatable for m in tenant[: -len(repeatable)])
    sql = repeatable[0].sql
    for name in ("book_slots", "book_slot", "staff_lock_key", "catalogue_changed"):
        assert f"CREATE OR REPLACE FUNCTION {name}(" in sql
    assert repeatable[0].file_name == "repeatable/booking.sql"


async def test_a_changed_repeatable_file_is_applied_again(pool: asyncpg.Pool, schema: str) -> None:
    async with pool.acquire() as conn:
        assert await migrate_schema(conn, schema, [TABLE, function(1)]) == [
            "0001_items",
            "R:answer",
        ]
        assert await migrate_schema(conn, schema, [TABLE, function(1)]) == []  # unchanged: skipped
        assert await _digest_of(conn, schema) == digest([TABLE, function(1)])
        assert await conn.fetchval(f"SELECT {quote_ident(schema)}.answer()") == 1

        # Edited in place: applied again, recorded with its new checksum, the digest follows.
        assert await migrate_schema(conn, schema, [TABLE, function(2)]) == ["R:answer"]
        assert await conn.fetchval(f"SELECT {quote_ident(schema)}.answer()") == 2
        recorded = await conn.fetchval(
            f"SELECT checksum FROM {quote_ident(schema)}.schema_migrations WHERE version = 'R:answer'"
        )
        assert recorded == function(2).checksum
        assert await _digest_of(conn, schema) == digest([TABLE, function(2)])

        # A numbered file edited after it was applied is still an error.
        with pytest.raises(MigrationError, match=r"0001_items\.sql was edited"):
            await migrate_schema(conn, schema, [make("0001_items", "SELECT 1;"), function(2)])


async def test_a_failing_repeatable_file_leaves_the_schema_pending(
    pool: asyncpg.Pool, schema: str
) -> None:
    broken = make(REPEATABLE_PREFIX + "answer", "CREATE OR REPLACE FUNCTION answer() RETURNS int")
    async with pool.acquire() as conn:
        await migrate_schema(conn, schema, [TABLE, function(1)])
        with pytest.raises(MigrationError, match=r"repeatable/answer\.sql failed"):
            await migrate_schema(conn, schema, [TABLE, broken])
        # The old function stays, and the schema is not taken for up to date with the broken file.
        assert await conn.fetchval(f"SELECT {quote_ident(schema)}.answer()") == 1
        assert await _digest_of(conn, schema) != digest([TABLE, broken])
        assert await _digest_of(conn, schema) == digest([TABLE, function(1)])


async def test_existing_tenant_schemas_take_the_file_once_and_keep_booking(
    pool: asyncpg.Pool, schema: str
) -> None:
    """A schema migrated before repeatable files existed (numbered files only) gets R:booking:
    the same functions, defined as in a schema migrated from scratch (the file edits them in place
    since: issue 21 taught book_slots about blocked customers)."""
    shipped = load_migrations("tenant")
    numbered = [m for m in shipped if not m.repeatable]
    async with pool.acquire() as conn:
        await migrate_schema(conn, schema, numbered)
        before = await conn.fetch(
            "SELECT p.proname, pg_get_functiondef(p.oid) AS body FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY 1",
            schema,
        )
        assert await migrate_schema(conn, schema, shipped) == ["R:booking"]
        after = await conn.fetch(
            "SELECT p.proname, pg_get_functiondef(p.oid) AS body FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY 1",
            schema,
        )
        # the same functions, as they were, but for those the file has changed since: book_slots
        # takes deposits (issue 19; its two-argument form now calls the three-argument one)
        changed = {"book_slots"}
        assert [dict(r) for r in after if r["proname"] not in changed] == [
            dict(r) for r in before if r["proname"] not in changed
        ]
        assert {r["proname"] for r in after} == {r["proname"] for r in before}
        assert sum(r["proname"] == "book_slots" for r in after) == 2
        assert await _digest_of(conn, schema) == digest(shipped)
