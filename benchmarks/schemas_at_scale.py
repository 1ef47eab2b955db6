"""Tenant schemas at scale: what a thousand (or ten thousand) tenant schemas cost PostgreSQL (issue 17).

    BOTFLEET_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    .venv/bin/python benchmarks/schemas_at_scale.py            # 1000 schemas
    .venv/bin/python benchmarks/schemas_at_scale.py --quick    # 50 schemas, under 30 s

In a scratch database of its own (dropped at the end, whatever happens):

1. ``--schemas`` tenant schemas are created by the real migration runner (``fleet.migrations``:
   every tenant migration and repeatable file, ``--concurrency`` at a time, as ``botfleet migrate``
   runs them): ``create_s``, ``create_ms_per_schema``;
2. the catalog they make: ``pg_class_rows``, ``pg_attribute_rows``, ``catalog_mb`` (pg_class,
   pg_attribute, pg_depend, pg_proc, pg_type, pg_index, pg_constraint and their indexes),
   ``database_mb``, and ``tables_per_schema``;
3. ``pg_dump -Fc``: pg_dump locks every table it dumps in one transaction, and past the server's
   shared lock table (``lock_slots``: max_locks_per_transaction x max_connections) it fails with "out
   of shared memory" — starving every other session of locks while it tries (seen here at 1000
   schemas: 13,000 tables, 6,400 slots). So it dumps as many schemas as fit in half the slots
   (``pg_dump_schemas``; all of them where they fit): ``pg_dump_s``, ``pg_dump_mb`` and both per 1000
   schemas; ``pg_dump_whole_database`` says whether the whole would fit (schemas hold no rows, so this
   is the catalog's share of a backup);
4. one more migration applied across every schema by the same runner (a column and an index on
   ``bookings``, a typical change): ``migrate_one_s``; then a run with nothing to do (the runner
   finds every schema up to date with one catalog query): ``migrate_noop_s``.

No roles are created (tenant roles are cluster-wide and this PostgreSQL is shared): the figures are
the schemas'. Progress on stderr, ONE JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fleet.data_plane import install_platform
from fleet.migrations import Migration, load_migrations, migrate_tenants

CATALOGS = (
    "pg_class",
    "pg_attribute",
    "pg_depend",
    "pg_proc",
    "pg_type",
    "pg_index",
    "pg_constraint",
    "pg_attrdef",
    "pg_description",
)
# A typical change across every tenant: a column and an index on the busiest table.
PROBE_SQL = (
    "ALTER TABLE bookings ADD COLUMN scale_probe text;"
    " CREATE INDEX bookings_scale_probe_idx ON bookings (scale_probe);"
)


def say(message: str) -> None:
    print(f"[schemas] {message}", file=sys.stderr, flush=True)


async def catalog(conn: asyncpg.Connection, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["pg_class_rows"] = await conn.fetchval("SELECT count(*) FROM pg_class")
    out["pg_attribute_rows"] = await conn.fetchval("SELECT count(*) FROM pg_attribute")
    size = await conn.fetchval(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
        " WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname = ANY($1::text[])",
        list(CATALOGS),
    )
    out["catalog_mb"] = round(float(size) / 2**20, 1)
    out["database_mb"] = round(
        await conn.fetchval("SELECT pg_database_size(current_database())") / 2**20, 1
    )
    tables = await conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND starts_with(n.nspname, $1)",
        prefix,
    )
    schemas = await conn.fetchval(
        "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, $1)", prefix
    )
    out["tables_per_schema"] = round(tables / max(schemas, 1), 1)
    out["relations_per_schema"] = round(
        await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE starts_with(n.nspname, $1)",
            prefix,
        )
        / max(schemas, 1),
        1,
    )
    return out


async def lock_budget(conn: asyncpg.Connection, prefix: str) -> dict[str, int]:
    """The shared lock table's slots and the tables a whole-database pg_dump would lock."""
    slots = await conn.fetchval(
        "SELECT current_setting('max_locks_per_transaction')::int"
        " * (current_setting('max_connections')::int"
        " + current_setting('max_prepared_transactions')::int)"
    )
    tables = await conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND starts_with(n.nspname, $1)",
        prefix,
    )
    return {"lock_slots": int(slots), "tables": int(tables)}


async def pg_dump(url: str, schemas: list[str]) -> tuple[float, float]:
    """``pg_dump -Fc`` of ``schemas``: seconds and MB."""
    with tempfile.TemporaryDirectory(prefix="botfleet-dump-") as folder:
        target = Path(folder) / "dump.custom"
        started = time.monotonic()
        only = [arg for schema in schemas for arg in ("-n", schema)]
        process = await asyncio.create_subprocess_exec(
            "pg_dump", "-Fc", "-f", str(target), *only, "-d", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, error = await process.communicate()
        elapsed = time.monotonic() - started
        if process.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {error.decode(errors='replace')[-300:]}")
        size = await asyncio.to_thread(lambda: target.stat().st_size)
    return elapsed, size / 2**20


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = os.environ.get("BOTFLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = "botfleet_scale_" + secrets.token_hex(4)
    admin_url = urlunsplit(urlsplit(base)._replace(path="/postgres"))
    url = urlunsplit(urlsplit(base)._replace(path="/" + name))
    prefix = "scale" + secrets.token_hex(3) + "_"
    schemas = [f"{prefix}t{i:05d}" for i in range(args.schemas)]
    out: dict[str, Any] = {"benchmark": "schemas_at_scale", "schemas": args.schemas}
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    started = time.monotonic()
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=args.concurrency + 1)
        try:
            async with pool.acquire() as conn:
                await install_platform(conn)
                out["empty_pg_class_rows"] = await conn.fetchval("SELECT count(*) FROM pg_class")
            migrations = load_migrations("tenant")
            t0 = time.monotonic()
            report = await migrate_tenants(
                pool, prefix=prefix, schemas=schemas, concurrency=args.concurrency,
                migrations=migrations,
            )  # fmt: skip
            if report.failed:
                raise RuntimeError(f"{len(report.failed)} schemas failed: {report.failed}")
            out["create_s"] = round(time.monotonic() - t0, 1)
            out["create_ms_per_schema"] = round(out["create_s"] * 1000 / args.schemas, 1)
            say(f"{args.schemas} schemas in {out['create_s']} s")
            async with pool.acquire() as conn:
                out |= await catalog(conn, prefix)
            say(f"catalog: {out['pg_class_rows']} pg_class rows, {out['database_mb']} MB")
            async with pool.acquire() as conn:
                out |= await lock_budget(conn, prefix)
            # pg_dump locks every table it dumps in one transaction: past the server's shared lock
            # table it fails ("out of shared memory") and, while it tries, starves every other
            # session of locks. Measured on a share small enough, and the whole only where it fits.
            share = min(
                args.schemas, max(1, out["lock_slots"] // 2 // int(out["tables_per_schema"]))
            )
            dumped = schemas[:share]
            out["pg_dump_schemas"] = share
            elapsed, dump_mb = await pg_dump(url, dumped)
            out["pg_dump_s"] = round(elapsed, 1)
            out["pg_dump_mb"] = round(dump_mb, 1)
            out["pg_dump_s_per_1000"] = round(elapsed * 1000 / share, 1)
            out["pg_dump_mb_per_1000"] = round(dump_mb * 1000 / share, 1)
            whole = out["tables"] < out["lock_slots"] // 2
            out["pg_dump_whole_database"] = (
                "fits"
                if whole
                else (
                    f"fails: {out['tables']} tables to lock, {out['lock_slots']} lock slots "
                    "(max_locks_per_transaction x max_connections)"
                )
            )
            say(f"pg_dump of {share} schemas: {out['pg_dump_s']} s, {out['pg_dump_mb']} MB")
            probe = Migration("9999_scale_probe", PROBE_SQL, secrets.token_hex(16))
            t0 = time.monotonic()
            report = await migrate_tenants(
                pool, prefix=prefix, schemas=schemas, concurrency=args.concurrency,
                migrations=[*migrations, probe],
            )  # fmt: skip
            if report.failed or len(report.migrated) != args.schemas:
                raise RuntimeError(f"the probe migration failed: {list(report.failed.items())[:3]}")
            out["migrate_one_s"] = round(time.monotonic() - t0, 1)
            say(f"one migration across {args.schemas} schemas: {out['migrate_one_s']} s")
            t0 = time.monotonic()
            report = await migrate_tenants(
                pool, prefix=prefix, concurrency=args.concurrency, migrations=[*migrations, probe]
            )
            assert len(report.up_to_date) == args.schemas, "the no-op run migrated something"
            out["migrate_noop_s"] = round(time.monotonic() - t0, 2)
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    out["wall_s"] = round(time.monotonic() - started, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 schemas (under 30 s)")
    parser.add_argument("--schemas", type=int, default=None, help="tenant schemas (1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="schemas migrated at once (8)")
    args = parser.parse_args()
    args.schemas = args.schemas or (50 if args.quick else 1000)
    if args.schemas < 1:
        parser.error("--schemas must be at least 1")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
