"""Density benchmark: many live tenant bots on one host (process or docker runtime), their memory,
their PostgreSQL and Redis connections, /start latency and race-free bookings (issue 17).

``--runtime docker`` measures tenant containers instead (enqueue -> live latency including the first
container after an image build, memory per container, the bot process's RSS, server connections):
see ``benchmarks/density_docker.py``; ``--runtime docker --quick`` runs 6 containers on the current
image, ``--runtime docker --tenants 100`` builds the image afresh first.

    BOTFLEET_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/botfleet \\
    BOTFLEET_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python benchmarks/density.py --quick

``--quick``: 50 tenants, 20 concurrent booking tenants; the full default: 1000 tenants, 100
bookers; ``--tenants N`` / ``--bookers N`` choose. One run, against the in-process Telegram emulator
and a deploy worker on the ``process`` runtime (bots forked from one warmed interpreter):

1. one tenant goes live alone and answers ``/start`` (paced): the baseline ``/start`` latency;
2. the other tenants are enqueued at once; ``time_to_all_live_s`` runs until every one answered
   ``/start``;
3. every bot idles past its connection idle time: ``pg_connections_idle`` (server connections of
   the run's tenant roles), ``redis_connections`` (clients of its ACL users), USS per bot;
4. ``/start`` to random live tenants (paced): ``start_p50_ms`` / ``start_p99_ms`` and their ratio to
   the baseline (most of these bots have a cold pool: the first query opens a connection);
5. ``bookers`` tenants each get two customers tapping Confirm on the same slot at the same moment:
   ``pg_connections_peak`` (sampled every 50 ms), ``redis_connections_peak`` (every 250 ms),
   ``double_bookings`` (slots held twice), and how each of the flows ended: ``bookings_booked``,
   ``bookings_taken`` (told the other customer just took the slot), ``bookings_refused_politely``
   (the bot's "temporarily unavailable, try again" answer, in the chat or as Confirm's alert: it
   found no database connection within its bounded wait), ``bookings_timed_out`` (no answer within
   ``--answer-timeout`` seconds: what must never happen) and ``booking_errors`` (anything else).

``--ksm`` switches the kernel's same-page merging on for the run (``/sys/kernel/mm/ksm``: run=1,
``--ksm-pages-to-scan`` pages every ``--ksm-sleep-ms`` ms; the host's settings are saved and put back
at the end; needs root) and the fork server opts itself and every bot in (``memory_merge`` on);
without it ``memory_merge`` is off. At step 3 the run then waits until merging has settled
(``pages_sharing`` grew by under 1 % over two full scans, at most ``--ksm-settle-s``) before it
measures USS again: ``uss_per_tenant_mb`` is after merging (``uss_per_tenant_mb_unmerged`` before the
wait), with the KSM counters (``ksm_pages_sharing``, ``ksm_pages_shared``, ``ksm_general_profit``),
``ksm_shared_per_tenant_mb`` (the merged pages kept once, per bot: what a bot really costs is its USS
plus that, ``uss_plus_ksm_per_tenant_mb``), ``ksm_settle_s``, USS again right after the bookings
(``uss_per_tenant_mb_after_bookings``: pages a bot writes are its own again until ksmd merges them
anew) and ksmd's CPU: while settling, over
the whole run, and as a share of one core after settling (``ksmd_cpu_pct_after_settle``: the
standing cost of scanning at that rate).

The bots close a connection idle ``--db-idle-s`` seconds (the deploy worker's
``tenant_db_idle_s``; connected directly, 2 by default here so the run stays small on a shared
server; through the pooler production's 30, since a bot's connection to PgBouncer costs PostgreSQL
nothing while each new one is a login whose password lookup queues for a server connection like
any query: measured at 100 tenants booking on 40 connections, 2 s gave 22 polite refusals of 200
flows, 30 s gave 14). PostgreSQL is shared: the run refuses to start unless the server has room for
``--min-free`` more connections (default: 3 per booker + 10; through the pooler, its bound + 11).
``--pooler pgbouncer`` (the default where the binary is installed) puts a PgBouncer of the run's
own in transaction mode between the bots and PostgreSQL (``botfleet up``'s, at most
``--pooler-connections`` server connections); ``--pooler direct`` connects them directly. It works in a scratch database with its own role prefix, Redis ACL
users and state directory; everything is removed at the end. Progress on stderr, ONE JSON line on
stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from redis.asyncio import Redis

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import ksmd
from benchmarks.provision import Bench, create_tenant, percentile, running, wait_active
from cli.embedded import EmbeddedPgBouncer, start_pooler
from fleet.db import create_pool
from fleet.secrets import SecretBox
from fleet.tenants import TenantService
from kit import memory_merge
from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from sandbox.testing import fast_emulator_config
from tenant_bot.booking import BookingCore, WorkInterval

SERVICE = "Haircut · "  # the button reads "Haircut · 1 h · 1 500 ₽" (money as kit.formats shows it)
SUMMARY_MARK = "check your booking"
# the bot's answers (templates/tenant_bot/en.j2): booked, the slot just taken, the polite refusal
BOOKED = "You are booked"
TAKEN = "was just taken"
REFUSAL = "temporarily unavailable"
ZONE = ZoneInfo("Europe/Moscow")


def say(message: str) -> None:
    print(f"[density] {message}", file=sys.stderr, flush=True)


class Tenant:
    """One benchmark tenant: its row, bot, schema and the sandbox users acting towards it."""

    def __init__(self, row: Any, bot_id: int, schema: str) -> None:
        self.row = row
        self.slug: str = row.slug
        self.bot_id = bot_id
        self.schema = schema
        self.visitor: TelegramUser | None = None
        self.bookers: list[TelegramUser] = []


async def first_answer_ms(user: TelegramUser, text: str = "/start", timeout: float = 30.0) -> float:
    """Send ``text``; milliseconds until the bot's first reaction shows in the chat."""
    started = time.perf_counter()
    await user.send(text)
    await user.wait_for_change(timeout=timeout)
    return (time.perf_counter() - started) * 1000


async def paced(
    count: int, rate: float, make: Any, *, concurrency: int = 8
) -> list[float | BaseException]:
    """Run ``make(i)`` for i < count, starting at most ``rate`` per second, ``concurrency`` at once."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float:
        async with gate:
            return await make(i)

    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(1 / rate)
    return list(await asyncio.gather(*tasks, return_exceptions=True))


class Probe:
    """Counts the run's server connections (its tenant roles) and remembers the peak."""

    def __init__(self, pool: asyncpg.Pool, prefix: str) -> None:
        self.pool = pool
        self.prefix = prefix
        self.peak = 0

    async def count(self) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename::text, $1)",
            self.prefix,
        )
        self.peak = max(self.peak, value)
        return int(value)

    async def sample(self, stop: asyncio.Event, every: float = 0.05) -> None:
        while not stop.is_set():
            await self.count()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


async def seed(bench: Bench, tenant: Tenant, customers: list[TelegramUser]) -> None:
    """One service, one staff member 10:00-18:00 every day, the customers registered."""
    pool = await asyncpg.create_pool(
        bench.database_url, min_size=0, max_size=1, server_settings={"search_path": tenant.schema}
    )
    try:
        core = BookingCore(pool)
        await core.catalogue.update_settings(
            business_name=f"Bench {tenant.slug}", min_notice_minutes=0, time_zone="Europe/Moscow"
        )
        service = await core.catalogue.create_service(
            name="Haircut", duration_minutes=60, price=1500
        )
        staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
        for weekday in range(7):
            await core.catalogue.set_working_hours(
                staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
            )
        for user in customers:
            await core.customers.register(user.id, name="Bench", phone="+79161234567", locale="en")
    finally:
        await pool.close()


def labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in message["inline_keyboard"] or [] for b in row]


class Refused(Exception):
    """The bot told the customer, politely, that it cannot serve them now (its "temporarily
    unavailable, try again in a minute" answer): counted apart from flows left without an answer."""


def _answered(wanted: Any) -> Any:
    """A predicate for the bot's newest message: ``wanted``, or the bot's polite refusal."""
    return lambda m: wanted(m) or REFUSAL in (m["text"] or "")


async def _step(user: TelegramUser, wanted: Any, timeout: float) -> dict[str, Any]:
    """Wait for the bot's answer to the customer's last action; :class:`Refused` when it refused."""
    message = await user.wait_for_bot_message(_answered(wanted), timeout=timeout)
    if REFUSAL in (message["text"] or ""):
        raise Refused(message["text"])
    return message


async def to_summary(user: TelegramUser, timeout: float) -> None:
    """/book -> the service -> tomorrow -> 10:00: the summary with its Confirm button."""
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)
    await user.send("/book")
    menu = await _step(user, lambda m: any(x.startswith(SERVICE) for x in labels(m)), timeout)
    await user.click(next(x for x in labels(menu) if x.startswith(SERVICE)))
    await _step(user, lambda m: "▶" in labels(m), timeout)
    if tomorrow.month != today.month:
        await user.click("▶")
        await _step(user, lambda m: "1" in labels(m), timeout)
    await user.click(str(tomorrow.day))
    await _step(user, lambda m: "10:00" in labels(m), timeout)
    await user.click("10:00")
    await _step(user, lambda m: SUMMARY_MARK in (m["text"] or ""), timeout)


async def confirm(user: TelegramUser, start: asyncio.Event, timeout: float) -> str:
    """Tap Confirm when ``start`` is set: "booked", "taken" (the other customer won the slot) or
    "other" (any other answer); :class:`Refused` or :class:`TimeoutError` otherwise."""
    await start.wait()
    query = await user.click("✅ Confirm")
    # the bot answers the tap first: an alert when it cannot book now (the summary stays, so the
    # customer taps Confirm again later), a toast or nothing when it did book or the slot was taken
    answer = await user.callback_answer(query, timeout=timeout)
    if REFUSAL in (answer.get("text") or ""):
        raise Refused(answer["text"])
    message = await _step(user, lambda m: SUMMARY_MARK not in (m["text"] or ""), timeout)
    if message.get("document"):  # the calendar file a booking confirmed at once is sent with
        return "booked"
    text = message["text"] or ""
    return "booked" if BOOKED in text else "taken" if TAKEN in text else f"other: {text[:120]}"


async def double_bookings(pool: asyncpg.Pool, tenants: list[Tenant]) -> tuple[int, int]:
    """(slots held more than once, tenants with exactly one booking) over ``tenants``."""
    doubles = singles = 0
    for tenant in tenants:
        rows = await pool.fetch(
            f'SELECT count(*) AS n FROM "{tenant.schema}".bookings'
            " WHERE status IN ('pending', 'confirmed') GROUP BY staff_id, starts_at"
        )
        doubles += sum(r["n"] - 1 for r in rows if r["n"] > 1)
        singles += int(len(rows) == 1 and rows[0]["n"] == 1)
    return doubles, singles


async def redis_clients(redis: Redis, prefix: str) -> int:
    clients = await redis.client_list()
    return sum(1 for c in clients if str(c.get("user", "")).startswith(prefix))


async def sample_redis(
    redis: Redis, prefix: str, stop: asyncio.Event, peak: list[int], every: float = 0.25
) -> None:
    """The run's Redis clients (its tenants' ACL users) every ``every`` s; the highest in ``peak``."""
    while not stop.is_set():
        peak[0] = max(peak[0], await redis_clients(redis, prefix))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def bench_run(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM as Ctrl-C: the run is cancelled and removes its bots (forked bots outlive their worker)
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    database_url = os.environ.get(
        "BOTFLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/botfleet"
    )
    redis_url = os.environ.get("BOTFLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
    bench = Bench(database_url=database_url, redis_url=redis_url, quick=args.quick)
    admin = await asyncpg.connect(database_url)
    try:
        free = await admin.fetchval(
            "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity"
        )
    finally:
        await admin.close()
    if free < args.min_free:
        raise SystemExit(
            f"PostgreSQL has room for {free} connections, the run wants {args.min_free}"
        )
    result: dict[str, Any] = {
        "benchmark": "density",
        "runtime": "process",
        "tenants": args.tenants,
        "bookers": args.bookers,
        "db_idle_s": args.db_idle_s,
        "pooler": args.pooler,
        "memory_merge": "on" if args.ksm else "off",
    }
    started = time.monotonic()
    ksmd_pid = ksmd.ksmd_pid()
    ksmd_cpu0 = ksmd.ksmd_cpu_s(ksmd_pid)
    redis = Redis.from_url(redis_url)
    await bench.create_database()
    pool = await create_pool(bench.database_url, max_size=4)
    probe = Probe(pool, bench.prefix)
    try:
        async with (
            TelegramEmulator.start(host="127.0.0.1", port=0, config=fast_emulator_config()) as tg,
            TelegramSandbox(tg.base_url) as sandbox,
        ):
            settings = bench.settings(
                "process",
                tg.base_url,
                tenant_db_idle_s=args.db_idle_s,
                worker_concurrency=8,
                pooler_server_connections=args.pooler_connections,
                memory_merge=result["memory_merge"],
            )
            service = TenantService(
                pool=pool,
                redis=redis,
                secrets=SecretBox(bench.master_key),
                role_prefix=bench.prefix,
            )
            async with contextlib.AsyncExitStack() as exits:
                if args.pooler == "pgbouncer":
                    # the bots reach PostgreSQL through a real PgBouncer, as `botfleet up` runs it
                    settings, line = await start_pooler(
                        settings, _pooler_dir(bench), exits, auth_user=bench.prefix + "pooler"
                    )
                    if not settings.tenant_database_pooler:
                        raise SystemExit(f"--pooler pgbouncer: {line}")
                    say(f"tenant bots' database: {line}")
                    result["pooler_server_connections"] = args.pooler_connections
                async with running(settings, pool, redis) as parts:
                    result |= await guarded(
                        phases(args, bench, service, parts, tg, sandbox, pool, redis, probe),
                        floor_bytes=int(args.min_mem_available_gb * 2**30),
                        running_bots=parts.runtime.list_by_label,
                    )
    finally:
        await pool.close()
        await bench.drop_everything(redis)
        await redis.aclose()
        shutil.rmtree(bench.state_dir, ignore_errors=True)
    result["wall_s"] = round(time.monotonic() - started, 1)
    ksmd_cpu1 = ksmd.ksmd_cpu_s(ksmd_pid)
    if args.ksm and ksmd_cpu0 is not None and ksmd_cpu1 is not None:
        result["ksmd_cpu_s"] = round(ksmd_cpu1 - ksmd_cpu0, 2)
        result["ksmd_cpu_pct"] = round(100 * result["ksmd_cpu_s"] / result["wall_s"], 1)
    return result


def mem_available() -> int:
    """The host's MemAvailable, bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


async def guarded(
    work: Coroutine[Any, Any, dict[str, Any]],
    *,
    floor_bytes: int,
    running_bots: Callable[[], Awaitable[list[Any]]],
) -> dict[str, Any]:
    """Run ``work`` while the host keeps ``floor_bytes`` available: below it the run stops (and
    cleans up) before the kernel's OOM killer picks a victim on this shared machine, saying how
    many bots were live."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait([task], timeout=1.0)
            available = mem_available()
            if not task.done() and available < floor_bytes:
                bots = len(await running_bots())
                raise SystemExit(
                    f"stopped: the host had {available / 2**30:.2f} GiB available"
                    f" (--min-mem-available-gb {floor_bytes / 2**30:g}) with {bots} bots running"
                )
        return task.result()
    finally:  # stopped, interrupted or cancelled: the phases stop too, then the run cleans up
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def make_tenant(
    service: TenantService, tg: TelegramEmulator, sandbox: TelegramSandbox, bench: Bench
) -> Tenant:
    row, bot_id = await create_tenant(service, tg, bench.next_slug("den"))
    tenant = Tenant(row, bot_id, service.names(row.slug).schema)
    tenant.visitor = await sandbox.user(bot_id=bot_id, first_name="Visitor", language_code="en")
    return tenant


async def phases(
    args: argparse.Namespace,
    bench: Bench,
    service: TenantService,
    parts: Any,
    tg: TelegramEmulator,
    sandbox: TelegramSandbox,
    pool: asyncpg.Pool,
    redis: Redis,
    probe: Probe,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # 1. the baseline: one tenant, alone
    first = await make_tenant(service, tg, sandbox, bench)
    await wait_active(pool, first.row.id, 120)
    assert first.visitor is not None
    await first.visitor.send("/start")
    await first.visitor.wait_for_change(timeout=60)
    # one request in flight per user, and few per user (the bot's rate limit is 12 per 10 s)
    visitors = [
        await sandbox.user(bot_id=first.bot_id, first_name=f"V{i}", language_code="en")
        for i in range(20)
    ]
    samples = await paced(
        args.samples // 2,
        args.rate,
        lambda i: first_answer_ms(visitors[i % len(visitors)]),
        concurrency=1,
    )
    alone = [v for v in samples if isinstance(v, float)]
    if not alone:
        raise RuntimeError(f"no /start answered by a tenant alone: {samples[:1]}")
    out["baseline_start_p50_ms"] = round(statistics.median(alone), 1)
    out["baseline_start_p99_ms"] = round(percentile(alone, 0.99) or 0, 1)
    say(f"baseline /start alone: p50 {out['baseline_start_p50_ms']} ms")

    # 2. everyone else at once
    t0 = time.monotonic()
    rest = [await make_tenant(service, tg, sandbox, bench) for _ in range(args.tenants - 1)]
    tenants = [first, *rest]
    say(f"{len(rest)} tenants enqueued in {time.monotonic() - t0:.1f} s")

    async def live(tenant: Tenant) -> None:
        await wait_active(pool, tenant.row.id, 600)
        assert tenant.visitor is not None
        await tenant.visitor.send("/start")
        await tenant.visitor.wait_for_change(timeout=120)

    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(probe.sample(stop_sampling, every=0.2))
    gate = asyncio.Semaphore(8)

    async def gated(tenant: Tenant) -> None:
        async with gate:
            await live(tenant)

    await asyncio.gather(*(gated(t) for t in rest))
    out["time_to_all_live_s"] = round(time.monotonic() - t0, 1)
    say(f"all {len(tenants)} answered /start after {out['time_to_all_live_s']} s")

    bookers = random.sample(tenants, min(args.bookers, len(tenants)))
    for tenant in bookers:
        tenant.bookers = [
            await sandbox.user(bot_id=tenant.bot_id, first_name=f"B{i}", language_code="en")
            for i in range(2)
        ]
    for tenant in tenants:
        await seed(bench, tenant, tenant.bookers)
    stop_sampling.set()
    await sampler
    out["pg_connections_peak_start_up"] = probe.peak

    # 3. idle
    await asyncio.sleep(args.db_idle_s + 3.0)
    out["pg_connections_idle"] = await probe.count()
    out["pg_connections_idle_per_tenant"] = round(out["pg_connections_idle"] / len(tenants), 3)
    out["redis_connections"] = await redis_clients(redis, bench.prefix)
    heartbeats = [service.names(t.slug).redis_prefix + "heartbeat" for t in tenants]
    out["live_tenants"] = sum([await redis.exists(*chunk) for chunk in _chunks(heartbeats, 200)])
    out |= memory(parts.runtime, tenants)
    say(
        f"idle: {out['pg_connections_idle']} PostgreSQL and {out['redis_connections']} Redis "
        f"connections, USS {out['uss_per_tenant_mb']} MB per bot"
    )
    settled_at: float = 0.0
    cpu_at: float | None = None
    out["memory_merge_enabled"] = bool(parts.runtime.memory_merge.get("enabled"))
    if args.ksm:
        out["uss_per_tenant_mb_unmerged"] = out["uss_per_tenant_mb"]
        out |= await ksmd.settle(timeout_s=args.ksm_settle_s)
        out |= memory(parts.runtime, tenants)
        out |= ksmd.counters()
        shared_mb = out["ksm_pages_shared"] * 4096 / 2**20
        out["ksm_shared_per_tenant_mb"] = round(shared_mb / len(tenants), 2)
        out["uss_plus_ksm_per_tenant_mb"] = round(
            out["uss_per_tenant_mb"] + out["ksm_shared_per_tenant_mb"], 2
        )
        out["bots_merging"] = sum(
            1
            for t in tenants
            if (pid := parts.runtime.pid_of(t.slug))
            and (stat := memory_merge.process_merging(pid))
            and stat.get("ksm_merge_any") == "yes"
        )
        say(
            f"KSM {'settled' if out['ksm_settled'] else 'NOT settled'} after "
            f"{out['ksm_settle_s']} s (ksmd {out['ksmd_cpu_s_settling']} s CPU): USS "
            f"{out['uss_per_tenant_mb']} MB per bot (+ {out['ksm_shared_per_tenant_mb']} MB of "
            f"merged pages kept once), {out['ksm_pages_sharing']} pages sharing"
        )
        settled_at, cpu_at = time.monotonic(), ksmd.ksmd_cpu_s(ksmd.ksmd_pid())

    # 4. /start to random live tenants
    picks = [random.choice(tenants) for _ in range(args.samples)]
    times = await paced(
        args.samples, args.rate, lambda i: first_answer_ms(picks[i].visitor), concurrency=1
    )
    ok = [t for t in times if isinstance(t, float)]
    out["start_errors"] = len(times) - len(ok)
    out["start_p50_ms"] = round(statistics.median(ok), 1)
    out["start_p99_ms"] = round(percentile(ok, 0.99) or 0, 1)
    out["start_p99_ratio"] = round(out["start_p99_ms"] / out["baseline_start_p99_ms"], 2)
    say(f"/start over {len(tenants)} live: p50 {out['start_p50_ms']} p99 {out['start_p99_ms']} ms")

    # 5. concurrent bookers: two customers of each booking tenant confirm the same slot at once
    await asyncio.sleep(args.db_idle_s + 1.0)
    probe.peak = 0
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(probe.sample(stop_sampling))
    redis_peak = [0]
    redis_sampler = asyncio.create_task(
        sample_redis(redis, bench.prefix, stop_sampling, redis_peak)
    )
    gate = asyncio.Semaphore(16)

    async def prepare(user: TelegramUser) -> None:
        async with gate:
            await to_summary(user, args.answer_timeout)

    try:
        users = [u for t in bookers for u in t.bookers]
        prepared = await asyncio.gather(*(prepare(u) for u in users), return_exceptions=True)
        ready = [
            u for u, p in zip(users, prepared, strict=True) if not isinstance(p, BaseException)
        ]
        go = asyncio.Event()
        confirms = [asyncio.create_task(confirm(u, go, args.answer_timeout)) for u in ready]
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        go.set()
        outcomes = await asyncio.gather(*confirms, return_exceptions=True)
        out["booking_wall_s"] = round(time.monotonic() - t0, 2)
        await asyncio.sleep(0.5)
    finally:
        stop_sampling.set()
        await sampler
        await redis_sampler
    # each bot's Redis pool opens at most tenant_bot.resources.REDIS_MAX_CONNECTIONS (5)
    out["redis_connections_peak"] = redis_peak[0]
    out["redis_connections_peak_per_tenant"] = round(redis_peak[0] / len(tenants), 2)
    out |= tally(
        [p for p in prepared if isinstance(p, BaseException)], outcomes, args.answer_timeout
    )
    out["pg_connections_peak"] = probe.peak
    out["double_bookings"], out["booked_tenants"] = await double_bookings(pool, bookers)
    if args.ksm:  # what a burst of use unmerged (ksmd merges it again while the bots idle)
        after = memory(parts.runtime, tenants)
        out["uss_per_tenant_mb_after_bookings"] = after["uss_per_tenant_mb"]
        out["ksm_pages_sharing_after_bookings"] = ksmd.counters()["ksm_pages_sharing"]
    if args.ksm and cpu_at is not None:
        cpu_now = ksmd.ksmd_cpu_s(ksmd.ksmd_pid()) or cpu_at
        out["ksmd_cpu_pct_after_settle"] = round(
            100 * (cpu_now - cpu_at) / max(time.monotonic() - settled_at, 0.001), 1
        )
    say(
        f"{len(bookers)} tenants booking at once: peak {probe.peak} connections, "
        f"{out['double_bookings']} double bookings, {out['booked_tenants']} booked"
    )
    return out


def memory(runtime: Any, tenants: list[Tenant]) -> dict[str, Any]:
    """USS (and PSS) of every live bot, per bot and in all."""
    usages = [u for u in (runtime.memory_of(t.slug) for t in tenants) if u]
    uss = [u["uss"] / 2**20 for u in usages]
    return {
        "uss_per_tenant_mb": round(statistics.mean(uss), 2),
        "total_uss_gb": round(sum(uss) / 1024, 3),
        "pss_per_tenant_mb": round(statistics.mean(u["pss"] / 2**20 for u in usages), 2),
    }


def tally(
    browsing: list[BaseException], confirming: list[str | BaseException], timeout: float
) -> dict[str, int]:
    """The booking flows' outcomes: every flow (two per booking tenant) ends booked, told the slot
    was just taken, refused politely (the bot's "temporarily unavailable, try again" answer, while
    browsing to the summary or at Confirm) or timed out (no answer within ``timeout`` s: the one
    outcome a customer must never see); anything else is an error."""
    flows = [*browsing, *confirming]
    counts = {
        "bookings_booked": sum(o == "booked" for o in flows),
        "bookings_taken": sum(o == "taken" for o in flows),
        "bookings_refused_politely": sum(isinstance(o, Refused) for o in flows),
        "bookings_timed_out": sum(isinstance(o, TimeoutError) for o in flows),
        # of those, at the Confirm tap (the others while browsing to the summary)
        "bookings_timed_out_at_confirm": sum(isinstance(o, TimeoutError) for o in confirming),
    }
    odd = [
        o
        for o in flows
        if not isinstance(o, Refused | TimeoutError) and o not in ("booked", "taken")
    ]
    counts["booking_errors"] = len(odd)
    for name, value in counts.items():
        if value and name not in (
            "bookings_booked",
            "bookings_taken",
            "bookings_timed_out_at_confirm",
        ):
            example = next(
                (o for o in flows if isinstance(o, BaseException | str) and _kind(o) == name), None
            )
            say(
                f"{value} booking flows {name.removeprefix('booking_').removeprefix('bookings_')}"
                f" (answer timeout {timeout} s), e.g. {example!r}"
            )
    return counts


def _kind(outcome: str | BaseException) -> str:
    if isinstance(outcome, Refused):
        return "bookings_refused_politely"
    if isinstance(outcome, TimeoutError):
        return "bookings_timed_out"
    if outcome in ("booked", "taken"):
        return f"bookings_{outcome}"
    return "booking_errors"


def _pooler_dir(bench: Bench) -> Path:
    root = bench.state_dir / "pgbouncer"
    root.mkdir(parents=True, exist_ok=True)
    for folder in (bench.state_dir, root):  # PgBouncer runs unprivileged when we are root
        folder.chmod(0o755)
    return root


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 tenants, 20 bookers")
    parser.add_argument("--tenants", type=int, default=None, help="live tenants (default 1000)")
    parser.add_argument("--bookers", type=int, default=None, help="tenants booking at once")
    parser.add_argument("--samples", type=int, default=None, help="/start samples (200)")
    parser.add_argument("--rate", type=float, default=10.0, help="/start samples per second")
    parser.add_argument(
        "--db-idle-s",
        type=float,
        default=None,
        help="bots' connection idle close (2 connected directly, 30 through the pooler)",
    )
    parser.add_argument(
        "--pooler",
        choices=("pgbouncer", "direct"),
        default="pgbouncer" if EmbeddedPgBouncer.binary() else "direct",
        help="bots reach PostgreSQL through a PgBouncer of the run's own (the default where the "
        "binary is installed) or directly",
    )
    parser.add_argument(
        "--pooler-connections",
        type=int,
        default=40,
        help="the pooler's bound on server connections, all tenants together (40)",
    )
    parser.add_argument(
        "--answer-timeout",
        type=float,
        default=30.0,
        help="seconds a customer waits for each answer of the bot before the flow counts as timed "
        "out (30)",
    )
    parser.add_argument(
        "--min-free",
        type=int,
        default=None,
        help="free PostgreSQL connections the run needs (default: 3 per booker + 10)",
    )
    parser.add_argument(
        "--min-mem-available-gb",
        type=float,
        default=1.5,
        help="stop the run (cleaning up) when the host's MemAvailable falls below this (1.5)",
    )
    parser.add_argument(
        "--ksm",
        action="store_true",
        help="switch ksmd on for the run (restored after; root) and opt the bots into merging",
    )
    parser.add_argument("--ksm-pages-to-scan", type=int, default=2000, help="ksmd pages per wake")
    parser.add_argument("--ksm-sleep-ms", type=int, default=20, help="ksmd sleep between wakes")
    parser.add_argument(
        "--ksm-settle-s", type=float, default=300.0, help="longest wait for merging to settle"
    )
    parser.add_argument(
        "--runtime",
        choices=("process", "docker"),
        default="process",
        help="process (the default) or docker (benchmarks/density_docker.py)",
    )
    docker = parser.add_argument_group("--runtime docker")
    docker.add_argument(
        "--arrival-s", type=float, default=2.0, help="seconds between two tenants' enqueues (2)"
    )
    docker.add_argument(
        "--fresh-image",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="build the image again under a tag of the run's own first (default: without --quick)",
    )
    docker.add_argument(
        "--image",
        default=os.environ.get("BOTFLEET_TENANT_IMAGE", "botfleet:latest"),
        help="the tenant image without --fresh-image (botfleet:latest)",
    )
    docker.add_argument("--network", choices=("bridge", "host"), default="bridge")
    docker.add_argument("--concurrency", type=int, default=4, help="the worker's jobs at once (4)")
    args = parser.parse_args()
    if args.db_idle_s is None:  # both runtimes: the bots' connection idle close
        args.db_idle_s = 30.0 if args.pooler == "pgbouncer" else 2.0
    if args.runtime == "docker":
        from benchmarks.density_docker import run_docker

        args.tenants = args.tenants or (6 if args.quick else 100)
        args.samples = args.samples or (20 if args.quick else 100)
        if args.fresh_image is None:
            args.fresh_image = not args.quick
        if args.tenants < 1:
            parser.error("--tenants must be at least 1")
        print(json.dumps(asyncio.run(run_docker(args))))
        return
    args.tenants = args.tenants or (50 if args.quick else 1000)
    if args.tenants < 1:
        parser.error("--tenants must be at least 1")
    args.bookers = min(args.bookers or (20 if args.quick else 100), args.tenants)
    args.samples = args.samples or (100 if args.quick else 200)
    # measured: a booking tenant peaks at 2-3 server connections (two customers, the background pass)
    # through the pooler, its bound (plus its lookup connection)
    wanted = args.pooler_connections + 1 if args.pooler == "pgbouncer" else 3 * args.bookers
    args.min_free = args.min_free if args.min_free is not None else wanted + 10
    with (
        ksmd.ksmd_on(args.ksm_pages_to_scan, args.ksm_sleep_ms)
        if args.ksm
        else contextlib.nullcontext()
    ):
        try:
            print(json.dumps(asyncio.run(bench_run(args))))
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise SystemExit(
                "density: interrupted; its bots, tenants and database were removed"
            ) from None


if __name__ == "__main__":
    main()
