"""Owner statistics benchmark: ``AnalyticsService.stats`` on a tenant with 100,000 bookings.

One throw-away tenant (schema and role, ``ensure_database_plane``, a unique prefix) is filled in SQL
with ``--bookings`` bookings over two years (every status, 2,000 customers, 5 services, 5 staff
members), analysed, and each range is asked ``--repeat`` times through ``BookingCore`` on a pool
connected as the tenant's role, exactly like the bot: a week, a month and a whole year. The goal:
the owner's answer well under a second (p99 of a year's statistics under 1,000 ms). Everything
created is dropped at the end.

    python benchmarks/analytics.py            # 100,000 bookings, 20 repeats
    python benchmarks/analytics.py --quick    # 100,000 bookings, 3 repeats, < 30 s

Reads BOTFLEET_DATABASE_URL. Prints progress on stderr and ONE JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from datetime import date

import asyncpg

# Run as a script, this folder comes first on sys.path, and its sibling benchmarks/tenant_bot.py
# would shadow the tenant_bot package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from fleet.data_plane import (  # noqa: E402
    TenantNames,
    drop_database_plane,
    ensure_database_plane,
    install_platform,
)
from fleet.identifiers import quote_ident  # noqa: E402
from tenant_bot.booking import BookingCore  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/botfleet_test"
RANGES = {
    "week": (date(2030, 3, 4), date(2030, 3, 10)),
    "month": (date(2030, 3, 1), date(2030, 3, 31)),
    "year": (date(2030, 1, 1), date(2030, 12, 31)),
}
GOAL_P99_MS = 1000.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def fill(pool: asyncpg.Pool, owner: asyncpg.Connection, schema: str, bookings: int) -> None:
    """Bookings every 10 minutes from 1 January 2029, none overlapping (so the active ones satisfy
    the exclusion constraints), with statuses as a real business has them. The bulk insert runs
    on the owner's connection (no tenant statement timeout); the catalogue goes through the core."""
    core = BookingCore(pool)
    await core.catalogue.update_settings(time_zone="Europe/Moscow")
    services = [
        (await core.catalogue.create_service(name=f"Service {i}", duration_minutes=10)).id
        for i in range(5)
    ]
    staff = [
        (await core.catalogue.create_staff(name=f"Staff {i}", service_ids=services)).id
        for i in range(5)
    ]
    await owner.execute(f"SET search_path TO {quote_ident(schema)}")
    await owner.execute(
        "INSERT INTO customers (telegram_user_id, name)"
        " SELECT 1000000 + g, 'c' || g FROM generate_series(1, 2000) AS g"
    )
    await owner.execute(
        """
        INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, ends_at, occupied,
                              status, price, created_at, updated_at)
        SELECT c.id, ($1::bigint[])[1 + g % 5], ($2::bigint[])[1 + (g / 5) % 5], s,
               s + interval '10 minutes', tstzrange(s, s + interval '10 minutes'),
               (ARRAY['done', 'done', 'done', 'done', 'no_show', 'cancelled', 'confirmed',
                      'pending'])[1 + (g * 7) % 8],
               (ARRAY[500, 700, 1500, 2000])[1 + g % 4], s, s
        FROM generate_series(1, $3::int) AS g
        CROSS JOIN LATERAL (SELECT timestamptz '2029-01-01 06:00+00'
                                   + make_interval(mins => 10 * g) AS s) AS t
        JOIN customers c ON c.telegram_user_id = 1000000 + 1 + (g * 7919) % 2000
        """,
        services,
        staff,
        bookings,
    )
    await owner.execute("ANALYZE bookings")
    await owner.execute("RESET search_path")


async def main(args: argparse.Namespace) -> dict:
    url = os.environ.get("BOTFLEET_DATABASE_URL", DEFAULT_URL)
    names = TenantNames.of("stats", "bench" + secrets.token_hex(3) + "_")
    password = secrets.token_urlsafe(16)
    owner = await asyncpg.connect(url)
    try:
        await install_platform(owner)
        await ensure_database_plane(owner, names, password=password)
        pool = await asyncpg.create_pool(
            url, user=names.role, password=password, min_size=1, max_size=2
        )
        try:
            started = time.perf_counter()
            log(f"filling {args.bookings} bookings")
            await fill(pool, owner, names.schema, args.bookings)
            fill_s = time.perf_counter() - started
            core = BookingCore(pool)
            timings: dict[str, list[float]] = {}
            for name, (day_from, day_to) in RANGES.items():
                await core.analytics.stats(day_from, day_to)  # warm the cache
                runs = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    stats = await core.analytics.stats(day_from, day_to)
                    runs.append((time.perf_counter() - t0) * 1000)
                timings[name] = sorted(runs)
                log(f"{name}: {stats.total} bookings, median {statistics.median(runs):.1f} ms")
        finally:
            await pool.close()
    finally:
        log("dropping the tenant schema")
        await drop_database_plane(owner, names)
        await owner.close()
    result: dict = {"benchmark": "analytics", "bookings": args.bookings, "repeat": args.repeat}
    for name, runs in timings.items():
        result[f"{name}_p50_ms"] = round(statistics.median(runs), 2)
        result[f"{name}_p99_ms"] = round(runs[min(len(runs) - 1, int(len(runs) * 0.99))], 2)
    result["fill_s"] = round(fill_s, 1)
    result["goals"] = {"year_p99_ms_max": GOAL_P99_MS}
    result["ok"] = result["year_p99_ms"] <= GOAL_P99_MS
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per range")
    parser.add_argument("--quick", action="store_true", help="3 repeats (< 30 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = min(args.repeat, 3)
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))))
