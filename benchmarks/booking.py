"""Booking-core benchmark: T tenants x W clients booking distinct slots plus hot-slot contention.

Each tenant gets its own schema and role (``ensure_database_plane``, a unique prefix) and is driven
through ``BookingCore`` on a pool connected as that role, exactly like a tenant bot. Tenants run in
waves of ``clients // clients_per_tenant`` so the total number of connections stays at ``clients``.
Every 10th attempt of each client aims at a per-tenant "hot" slot that all the tenant's clients want at
once (only one may win). After the run an audit query counts overlapping active bookings (must be 0).

The baseline, on the same database with the same driver and the same concurrency, is the plain
single-row INSERT rate into an unconstrained table, measured in bursts right before and right after
each wave's timed run (the wave's concurrency; as many rows as the wave's attempts in all), on one pool
kept for the whole run, so both see the same load and neither pays for connections coming or going.
pgbench's rate for the same INSERT is added when pgbench is installed. Everything created is dropped
at the end.

    python benchmarks/booking.py            # 50 tenants
    python benchmarks/booking.py --quick    # 5 tenants, < 30 s

Prints progress on stderr and ONE JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

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
from tenant_bot.booking import Actor, BookingCore, WorkInterval, init_connection  # noqa: E402
from tenant_bot.booking.errors import SlotTaken  # noqa: E402
from tenant_bot.booking.slots import to_utc  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/botfleet_test"
CUSTOMERS = 50
SLOT_MINUTES = 30
HOT_EVERY = 10
_ZONE = ZoneInfo("Europe/Moscow")


@dataclass
class Tally:
    """What the clients did."""

    booked: int = 0
    hot_lost: int = 0
    other_errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    busy_seconds: float = 0.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def seed(pool: asyncpg.Pool, staff: int) -> tuple[int, list[int], list[int]]:
    """One 30-minute service, ``staff`` staff working round the clock, CUSTOMERS customers."""
    core = BookingCore(pool)
    await core.catalogue.update_settings(
        time_zone="Europe/Moscow",
        slot_step_minutes=SLOT_MINUTES,
        min_notice_minutes=0,
        horizon_days=366,
        max_active_per_customer=100,
    )
    service = await core.catalogue.create_service(name="Haircut", duration_minutes=SLOT_MINUTES)
    staff_ids = []
    for i in range(staff):
        member = await core.catalogue.create_staff(name=f"Staff {i}", service_ids=[service.id])
        for weekday in range(7):
            await core.catalogue.set_working_hours(member.id, weekday, [WorkInterval(0, 1440)])
        staff_ids.append(member.id)
    customers = [(await core.customers.register(10_000 + i)).id for i in range(CUSTOMERS)]
    return service.id, staff_ids, customers


async def warm_up(
    pool: asyncpg.Pool, ids: tuple[int, list[int], list[int]], base_day: date
) -> None:
    """One booking on each connection of the pool, untimed: a connection plans the booking's
    statements once in its life, and the core loads its catalogue cache once, as in a long-running
    bot. The core writes on whichever connection is free, so all but one are held aside in turn."""
    core = BookingCore(pool)
    service_id, staff_ids, customers = ids
    warm_day = base_day + timedelta(days=200)
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        for k in range(len(held)):
            await pool.release(held[k])  # the only free connection: the booking runs on it
            await core.bookings.book(
                customer_id=customers[k % len(customers)],
                service_id=service_id,
                staff_id=staff_ids[k % len(staff_ids)],
                start=to_utc(warm_day, k * SLOT_MINUTES, _ZONE),
            )
            held[k] = await pool.acquire()
    finally:
        for conn in held:
            await pool.release(conn)


async def run_tenant(
    pool: asyncpg.Pool,
    ids: tuple[int, list[int], list[int]],
    *,
    clients: int,
    per_client: int,
    base_day: date,
    tally: Tally,
) -> None:
    """``clients`` concurrent clients each booking ``per_client`` times on this tenant."""
    core = BookingCore(pool)
    service_id, staff_ids, customers = ids
    zone_day_slots = 1440 // SLOT_MINUTES
    hot_day = base_day + timedelta(days=300)

    async def client(worker: int) -> None:
        for i in range(per_client):
            if i % HOT_EVERY == 0:  # everyone wants the same slot at once
                staff_id = staff_ids[0]
                start = to_utc(hot_day, (i // HOT_EVERY) * SLOT_MINUTES, _ZONE)
            else:
                slot = worker * per_client + i  # unique per attempt, so never contended
                staff_id = staff_ids[(worker + i) % len(staff_ids)]  # clients spread over staff
                day = base_day + timedelta(days=slot // zone_day_slots)
                start = to_utc(day, (slot % zone_day_slots) * SLOT_MINUTES, _ZONE)
            began = time.perf_counter()
            try:
                index = (worker * per_client + i) % len(customers)
                await core.bookings.book(
                    customer_id=customers[index],
                    service_id=service_id,
                    staff_id=staff_id,
                    start=start,
                    # as the bot's checkout books: the customer's chat named (the owners' notices
                    # are armed with the booking, migration 0070)
                    actor=Actor.customer(10_000 + index),
                )
                tally.booked += 1
            except SlotTaken:
                if i % HOT_EVERY:
                    raise
                tally.hot_lost += 1
            tally.latencies_ms.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client(w) for w in range(clients)))


async def audit(conn: asyncpg.Connection, schemas: list[str]) -> int:
    """Pairs of overlapping active bookings of one staff member that may not coexist (the same seat,
    or seats of different sessions), over every tenant."""
    total = 0
    for schema in schemas:
        q = quote_ident(schema)
        total += await conn.fetchval(
            f"""SELECT count(*) FROM {q}.bookings a JOIN {q}.bookings b
                ON a.staff_id = b.staff_id AND a.id < b.id AND a.occupied && b.occupied
                   AND (a.seat = b.seat OR a.service_id <> b.service_id
                        OR a.starts_at <> b.starts_at)
                WHERE a.status IN ('pending', 'confirmed') AND b.status IN ('pending', 'confirmed')"""
        )
    return total


class InsertBaseline:
    """Plain single-row INSERTs with the same driver and concurrency, timed in bursts.

    One pool for the whole run (warmed like the tenants' pools), so no burst pays for connections
    coming or going, and no backend exits while bookings are timed."""

    def __init__(self, pool: asyncpg.Pool, sql: str) -> None:
        self._pool = pool
        self._sql = sql

    @classmethod
    async def open(cls, url: str, schema: str, *, clients: int) -> InsertBaseline:
        table = f"{quote_ident(schema)}.baseline"
        pool = await asyncpg.create_pool(url, min_size=clients, max_size=clients)
        await pool.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (id bigint GENERATED ALWAYS AS IDENTITY"
            " PRIMARY KEY, staff_id bigint NOT NULL, customer_id bigint NOT NULL,"
            " starts_at timestamptz NOT NULL, ends_at timestamptz NOT NULL)"
        )
        sql = f"INSERT INTO {table} (staff_id, customer_id, starts_at, ends_at) VALUES ($1, $2, $3, $4)"
        now = datetime.now(UTC)
        # the same untimed warm-up as the tenants': one statement per connection
        await asyncio.gather(*(pool.execute(sql, 0, 0, now, now) for _ in range(clients)))
        return cls(pool, sql)

    async def burst(self, *, clients: int, rows: int) -> tuple[int, float]:
        """``rows`` INSERTs by ``clients`` concurrent clients: (rows, seconds)."""
        now = datetime.now(UTC)
        per_client = rows // clients

        async def client(worker: int) -> None:
            for i in range(per_client):
                start = now + timedelta(minutes=i)
                await self._pool.execute(self._sql, worker, i, start, start + timedelta(minutes=30))

        began = time.perf_counter()
        await asyncio.gather(*(client(w) for w in range(clients)))
        return per_client * clients, time.perf_counter() - began

    async def close(self) -> None:
        await self._pool.close()


def pgbench_tps(url: str, *, clients: int, seconds: int) -> float | None:
    """pgbench running the same INSERT in a scratch database (dropped afterwards), if installed."""
    if shutil.which("pgbench") is None:
        return None
    parts = urlsplit(url)
    scratch = "botfleet_bench_" + secrets.token_hex(4)
    admin = urlunsplit(parts._replace(path="/postgres"))
    target = urlunsplit(parts._replace(path="/" + scratch))
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {scratch}"], check=True)
    try:
        subprocess.run(
            [
                "psql",
                target,
                "-qc",
                "CREATE TABLE baseline (id bigint GENERATED ALWAYS AS IDENTITY"
                " PRIMARY KEY, staff_id bigint, customer_id bigint, starts_at timestamptz,"
                " ends_at timestamptz)",
            ],
            check=True,
        )
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            script.write(
                "INSERT INTO baseline (staff_id, customer_id, starts_at, ends_at)"
                " VALUES (1, 1, now(), now() + interval '30 minutes');\n"
            )
        out = subprocess.run(
            [
                "pgbench",
                "-n",
                "-M",
                "prepared",
                "-f",
                script.name,
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                target,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        os.unlink(script.name)
        for line in out.splitlines():
            if line.startswith("tps ="):
                return float(line.split()[2])
        return None
    finally:
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {scratch}"], check=False)


async def main(args: argparse.Namespace) -> dict:
    url = os.environ.get("BOTFLEET_DATABASE_URL", DEFAULT_URL)
    prefix = "bench" + secrets.token_hex(3) + "_"
    names = [TenantNames.of(f"tenant{i:04d}", prefix) for i in range(args.tenants)]
    per_wave = min(max(1, args.clients // args.clients_per_tenant), args.tenants)
    owner = await asyncpg.connect(url)
    tally = Tally()
    try:
        await install_platform(owner)
        log(f"creating {len(names)} tenant schemas with prefix {prefix}")
        passwords = {n.slug: secrets.token_urlsafe(16) for n in names}
        for n in names:
            await ensure_database_plane(owner, n, password=passwords[n.slug])
        # The machine's load drifts (other work shares it), so the baseline is measured in bursts
        # under the same conditions as the bookings: right before and right after each wave's timed
        # run (after its set-up, with every connection of both sides open), with the wave's
        # concurrency and number of attempts.
        baseline = await InsertBaseline.open(
            url, names[0].schema, clients=per_wave * args.clients_per_tenant
        )
        bursts: list[tuple[int, float]] = []
        base_day = datetime.now(_ZONE).date() + timedelta(days=2)
        booking_seconds = 0.0
        try:
            for w in range(0, len(names), per_wave):
                wave = names[w : w + per_wave]
                clients = len(wave) * args.clients_per_tenant
                pools = [
                    await asyncpg.create_pool(
                        url,
                        user=n.role,
                        password=passwords[n.slug],
                        min_size=args.clients_per_tenant,
                        max_size=args.clients_per_tenant,
                        init=init_connection,  # as the tenant bot's pool
                    )
                    for n in wave
                ]
                try:
                    seeded = [await seed(p, args.staff) for p in pools]
                    for p, ids in zip(pools, seeded, strict=True):
                        await warm_up(p, ids, base_day)
                    log(f"wave {w // per_wave + 1}: baseline, bookings, baseline")
                    rows = clients * args.per_client // 2
                    bursts.append(await baseline.burst(clients=clients, rows=rows))
                    began = time.perf_counter()
                    await asyncio.gather(
                        *(
                            run_tenant(
                                p,
                                ids,
                                clients=args.clients_per_tenant,
                                per_client=args.per_client,
                                base_day=base_day,
                                tally=tally,
                            )
                            for p, ids in zip(pools, seeded, strict=True)
                        )
                    )
                    booking_seconds += time.perf_counter() - began
                    bursts.append(await baseline.burst(clients=clients, rows=rows))
                finally:
                    for p in pools:
                        await p.close()
                log(f"wave {w // per_wave + 1}: {tally.booked} booked so far")
        finally:
            await baseline.close()
        double = await audit(owner, [n.schema for n in names])
        attempts = len(tally.latencies_ms)
        insert_rate = sum(rows for rows, _ in bursts) / sum(seconds for _, seconds in bursts)
        pgbench = pgbench_tps(
            url, clients=per_wave * args.clients_per_tenant, seconds=3 if args.quick else 10
        )
    finally:
        log("dropping tenant schemas")
        for n in names:
            await drop_database_plane(owner, n)
        await owner.close()
    latencies = sorted(tally.latencies_ms)
    bookings_per_s = tally.booked / booking_seconds
    result = {
        "tenants": len(names),
        "clients": per_wave * args.clients_per_tenant,
        "clients_per_tenant": args.clients_per_tenant,
        "attempts": attempts,
        "bookings": tally.booked,
        "hot_slot_losers": tally.hot_lost,
        "bookings_per_s": round(bookings_per_s, 1),
        "attempts_per_s": round(attempts / booking_seconds, 1),
        "insert_baseline_per_s": round(insert_rate, 1),
        "insert_baseline_bursts_per_s": [round(rows / seconds, 1) for rows, seconds in bursts],
        "ratio": round(bookings_per_s / insert_rate, 3),
        "double_bookings": double,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
    }
    if pgbench is not None:
        result["pgbench_tps"] = round(pgbench, 1)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--clients", type=int, default=32, help="total concurrent clients")
    parser.add_argument("--clients-per-tenant", type=int, default=4)
    parser.add_argument("--staff", type=int, default=4, help="staff members per tenant")
    parser.add_argument("--per-client", type=int, default=100, help="booking attempts per client")
    parser.add_argument("--quick", action="store_true", help="5 tenants, fewer attempts (< 30 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants = min(args.tenants, 5)
        args.per_client = min(args.per_client, 60)
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))))
