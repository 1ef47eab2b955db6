"""Provision N tenant data planes, then time migrations across all of them.

Prints: time to provision the data planes (role, schema, grants, Redis ACL user), a first tenant
migration across all (every file in migrations/tenant), a real one-file migration across all (a new
ALTER TABLE), and a no-op migrate across all (nothing to do: one catalog query), with schemas/s.
Goals on a 2-core machine: no-op of 1000 under 5 s, a one-file migration of 1000 under 60 s.

    python benchmarks/migrate_fleet.py [--tenants 1000] [--concurrency 8] [--quick]

Reads BOTFLEET_DATABASE_URL and BOTFLEET_REDIS_URL; everything it creates uses a random prefix and is
dropped at the end. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import time

from redis.asyncio import Redis

from fleet.data_plane import (
    TenantNames,
    drop_database_plane,
    drop_redis_user,
    ensure_database_plane,
    ensure_redis_user,
    install_platform,
)
from fleet.db import create_pool
from fleet.migrations import Migration, load_migrations, migrate_tenants


async def bounded(concurrency: int, items: list, work) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item) -> None:
        async with semaphore:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))


async def main(tenants: int, concurrency: int) -> dict:
    database_url = os.environ.get(
        "BOTFLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/botfleet_test"
    )
    redis_url = os.environ.get("BOTFLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = "bm" + secrets.token_hex(3) + "_"
    names = [TenantNames.of(f"tenant{i:05d}", prefix) for i in range(tenants)]
    pool = await create_pool(database_url, min_size=concurrency, max_size=concurrency + 2)
    redis = Redis.from_url(redis_url)
    migrations = load_migrations("tenant")
    extra_sql = "CREATE TABLE bench_notes (id bigint PRIMARY KEY, note text NOT NULL);"
    one_more = Migration(
        "9999_bench_one_file", extra_sql, hashlib.sha256(extra_sql.encode()).hexdigest()
    )
    figures: dict = {
        "tenants": tenants,
        "concurrency": concurrency,
        "tenant_migration_files": len(migrations),
    }
    try:
        async with pool.acquire() as conn:
            await install_platform(conn)

        async def provision(n: TenantNames) -> None:
            async with pool.acquire() as conn:
                await ensure_database_plane(
                    conn, n, password=secrets.token_urlsafe(16), migrations=[]
                )
            await ensure_redis_user(redis, n, password=secrets.token_urlsafe(16))

        started = time.perf_counter()
        await bounded(concurrency, names, provision)
        figures["provision_s"] = round(time.perf_counter() - started, 3)

        async def timed_migrate(files: list[Migration]) -> tuple[float, object]:
            started = time.perf_counter()
            report = await migrate_tenants(
                pool, prefix=prefix, concurrency=concurrency, migrations=files
            )
            return time.perf_counter() - started, report

        elapsed, report = await timed_migrate(migrations)
        assert report.ok and len(report.migrated) == tenants, report.failed
        figures["migrate_s"] = round(elapsed, 3)

        elapsed, report = await timed_migrate([*migrations, one_more])
        assert report.ok and len(report.migrated) == tenants, report.failed
        figures["one_file_migrate_s"] = round(elapsed, 3)

        elapsed, report = await timed_migrate([*migrations, one_more])
        assert report.ok and len(report.up_to_date) == tenants and not report.migrated
        figures["noop_migrate_s"] = round(elapsed, 3)

        for key in ("provision", "migrate", "one_file_migrate", "noop_migrate"):
            seconds = figures[f"{key}_s"]
            figures[f"{key}_schemas_per_s"] = round(tenants / seconds, 1) if seconds else None
        # goal ratios: measured / goal, scaled to 1000 schemas (below 1.0 meets the goal)
        scale = 1000 / tenants
        figures["noop_goal_ratio"] = round(figures["noop_migrate_s"] * scale / 5.0, 4)
        figures["one_file_goal_ratio"] = round(figures["one_file_migrate_s"] * scale / 60.0, 4)
    finally:

        async def drop(n: TenantNames) -> None:
            async with pool.acquire() as conn:
                await drop_database_plane(conn, n)
            await drop_redis_user(redis, n)

        started = time.perf_counter()
        await bounded(concurrency, names, drop)
        figures["cleanup_s"] = round(time.perf_counter() - started, 3)
        await redis.aclose()
        await pool.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="100 tenants, under 30 s")
    args = parser.parse_args()
    count = 100 if args.quick else args.tenants
    result = asyncio.run(main(count, args.concurrency))
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(json.dumps(result))
