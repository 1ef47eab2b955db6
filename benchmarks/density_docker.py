"""The docker half of ``benchmarks/density.py`` (``--runtime docker``): tenant containers on one host,
enqueue -> live latency (the first after an image build included), memory per container, PostgreSQL
server connections through the run's PgBouncer (issue 17).

1. ``--fresh-image`` (the default without ``--quick``): build the image again under a tag of the
   run's own (``.ci/build-image.sh`` with ``FORCE=1``; removed at the end), so the first tenants
   start on an image nobody ran yet, as after a build or a ``fleet upgrade``;
2. a deploy worker on the docker runtime starts (``warm_up_s``: its warm-up of the tenant image);
3. one tenant is enqueued alone: ``first_after_build_s``, enqueue -> its bot answered ``/start``;
4. the others arrive one every ``--arrival-s`` seconds (sign-ups, not one burst: two cores start
   about one container a second); each one's enqueue -> ``/start`` answered gives
   ``enqueue_to_live_p50_s`` / ``p95_s`` / ``max_s`` (the first included);
5. every bot idles past its connection idle time: ``container_mem_mb_p50`` / ``_max`` (usage less
   inactive page cache, as ``docker stats`` shows it), ``container_usage_mb_p50`` (the cgroup's
   ``memory.usage`` with its page cache), ``process_rss_mb`` / ``process_uss_mb`` (the bot process,
   from ``/proc/<pid>/smaps_rollup`` on this host), ``host_cpu_busy_pct`` with the whole fleet idle,
   idle PostgreSQL and Redis connections, ``live_tenants`` (heartbeats present);
6. ``/start`` to random live tenants (paced): ``start_p50_ms`` / ``start_p99_ms``.

``pg_connections_peak`` is sampled every 200 ms over the whole run (the run's tenant roles and the
pooler's lookup role). Tenants run on a bridge network of the run's own (``--network bridge``: the
runtime relays the host's loopback PostgreSQL, PgBouncer, Redis and the emulator to its gateway, as
on ``botfleet up``) or ``--network host``. Containers, the network, the image tag, the scratch
database, roles and ACL users are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from benchmarks.provision import Bench, percentile, running, wait_active

ROOT = Path(__file__).resolve().parents[1]
CONTAINER_RESERVE_BYTES = 136 * 2**20  # set aside per container (measured: 122-134 MB)
HOST_RESERVE_BYTES = 4 * 2**30  # left free for the other users of the machine


def say(message: str) -> None:
    print(f"[density-docker] {message}", file=sys.stderr, flush=True)


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole host from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def host_cpu_busy_pct(seconds: float) -> float:
    busy0, total0 = cpu_times()
    await asyncio.sleep(seconds)
    busy1, total1 = cpu_times()
    return round(100 * (busy1 - busy0) / max(1.0, total1 - total0), 1)


def step_percentiles(recent: Any) -> dict[str, list[float]]:
    """The deploy worker's provisioning step times (its converger's last provisions): step ->
    [p50, p95] seconds."""
    out: dict[str, list[float]] = {}
    for step in ("token", "data_plane", "spec", "runtime", "heartbeat", "live"):
        values = [r[step] for r in recent if step in r]
        if values:
            out[step] = [round(statistics.median(values), 2), percentile(values, 0.95) or 0.0]
    return out


ENGINE_PROCESSES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc")


def _process_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds) of every process on the host."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _container_cpu(container_ids: list[str]) -> float | None:
    """CPU seconds of these containers' cgroups (every process in them: the bot and its health
    checks), cgroup v1 (cgroupfs) or v2 (systemd); None when neither is readable here."""
    total, found = 0.0, False
    for cid in container_ids:
        for path, scale, key in (
            (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9, None),
            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6, "usage_usec"),
            (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6, "usage_usec"),
        ):
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            if key is None:
                value = float(text)
            else:
                value = float(next(ln.split()[1] for ln in text.splitlines() if ln.startswith(key)))
            total += value / scale
            found = True
            break
    return total if found else None


async def cpu_split(seconds: float, container_ids: list[str]) -> dict[str, float]:
    """Cores used over ``seconds``: the whole host, the fleet's containers (bots and health
    checks), the engine's daemons (dockerd, containerd, shims, runc), this process (the worker and
    the benchmark)."""
    busy0, _ = cpu_times()
    procs0, fleet0 = _process_cpu(), _container_cpu(container_ids)
    own0 = sum(os.times()[:2])
    started = time.monotonic()
    await asyncio.sleep(seconds)
    busy1, _ = cpu_times()
    procs1, fleet1 = _process_cpu(), _container_cpu(container_ids)
    own1 = sum(os.times()[:2])
    elapsed = time.monotonic() - started
    engine = 0.0
    for pid, (comm, cpu) in procs1.items():
        if comm.startswith(ENGINE_PROCESSES):
            before = procs0.get(pid)
            engine += cpu - (before[1] if before and before[0] == comm else 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    out = {
        "host_cores": round((busy1 - busy0) / tick / elapsed, 2),
        "engine_cores": round(engine / elapsed, 3),
        "worker_and_bench_cores": round((own1 - own0) / elapsed, 3),
    }
    if fleet0 is not None and fleet1 is not None:
        out["containers_cores"] = round((fleet1 - fleet0) / elapsed, 3)
    return out


def build_image(tag: str) -> float:
    """``.ci/build-image.sh`` under ``tag`` (a new image id: FORCE=1); seconds it took."""
    started = time.monotonic()
    env = {**os.environ, "BOTFLEET_IMAGE": tag, "FORCE": "1"}
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "build-image.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"--fresh-image: the build failed:\n{done.stderr[-2000:]}")
    return round(time.monotonic() - started, 1)


def container_memory_all(client: Any, container_id: str) -> dict[str, Any]:
    """One stats read: docker stats' figure (usage less inactive file cache), the raw cgroup usage,
    and the bot process's RSS/USS from /proc (this host's view of the container's PID 1). MB."""
    stats = client.api.stats(container_id, stream=False, one_shot=True)
    memory = stats.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    inactive = int(detail.get("inactive_file", detail.get("total_inactive_file", 0)))
    out: dict[str, Any] = {"stats_mb": max(0, usage - inactive) / 2**20, "usage_mb": usage / 2**20}
    out["id"] = container_id
    pid = int(client.api.inspect_container(container_id)["State"].get("Pid") or 0)
    if pid:
        from deploy_worker.runtimes.process import read_memory

        proc = read_memory(pid)
        if proc:
            out["rss_mb"] = proc["rss"] / 2**20
            out["uss_mb"] = proc["uss"] / 2**20
    return out


async def run_docker(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.density import Probe, _pooler_dir
    from cli.embedded import start_pooler
    from deploy_worker.runtimes import docker_client
    from fleet.db import create_pool
    from fleet.secrets import SecretBox
    from fleet.tenants import TenantService
    from sandbox.telegram import TelegramEmulator, TelegramSandbox
    from sandbox.testing import fast_emulator_config

    client = docker_client(timeout=30)
    if client is None:
        raise SystemExit("--runtime docker: no Docker engine answers")
    wanted = args.tenants * CONTAINER_RESERVE_BYTES + HOST_RESERVE_BYTES
    available = mem_available()
    if available < wanted:
        fits = max(0, (available - HOST_RESERVE_BYTES) // CONTAINER_RESERVE_BYTES)
        raise SystemExit(
            f"{available / 2**30:.1f} GiB available; {args.tenants} containers want "
            f"{wanted / 2**30:.1f} GiB with 4 GiB left for others: try --tenants {fits}"
        )
    database_url = os.environ.get(
        "BOTFLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/botfleet"
    )
    redis_url = os.environ.get("BOTFLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
    bench = Bench(database_url=database_url, redis_url=redis_url, quick=args.quick)
    result: dict[str, Any] = {
        "benchmark": "density",
        "runtime": "docker",
        "tenants": args.tenants,
        "arrival_s": args.arrival_s,
        "network": args.network,
        "pooler": args.pooler,
        "db_idle_s": args.db_idle_s,
        "load_before": round(os.getloadavg()[0], 2),
        "mem_available_gb_before": round(available / 2**30, 1),
    }
    started = time.monotonic()
    image = args.image
    tag = None
    network = "host" if args.network == "host" else f"{bench.prefix}tenants"
    redis = Redis.from_url(redis_url)
    pool: asyncpg.Pool | None = None
    try:
        if args.fresh_image:
            tag = f"botfleet:density-{secrets.token_hex(3)}"
            say(f"building {tag} (.ci/build-image.sh, FORCE=1)")
            result["image_build_s"] = await asyncio.to_thread(build_image, tag)
            image = tag
        result["image"] = image
        await bench.create_database()
        pool = await create_pool(bench.database_url, max_size=4)
        probe = Probe(pool, bench.prefix)
        async with (
            TelegramEmulator.start(host="127.0.0.1", port=0, config=fast_emulator_config()) as tg,
            TelegramSandbox(tg.base_url) as sandbox,
        ):
            settings = bench.settings(
                "docker",
                tg.base_url,
                tenant_image=image,
                tenant_network=network,
                tenant_db_idle_s=args.db_idle_s,
                worker_concurrency=args.concurrency,
                heartbeat_timeout_s=120.0,
                pooler_server_connections=args.pooler_connections,
            )
            service = TenantService(
                pool=pool,
                redis=redis,
                secrets=SecretBox(bench.master_key),
                role_prefix=bench.prefix,
            )
            async with contextlib.AsyncExitStack() as exits:
                if args.pooler == "pgbouncer":
                    # as `botfleet up` starts it: on 127.0.0.1, which containers reach through the
                    # runtime's relay (or the host network)
                    settings, line = await start_pooler(
                        settings, _pooler_dir(bench), exits, auth_user=bench.prefix + "pooler"
                    )
                    if not settings.tenant_database_pooler:
                        raise SystemExit(f"--pooler pgbouncer: {line}")
                    say(f"tenant bots' database: {line}")
                    result["pooler_server_connections"] = args.pooler_connections
                t0 = time.monotonic()
                async with running(settings, pool, redis) as parts:
                    result["warm_up_s"] = round(time.monotonic() - t0, 2)
                    say(f"worker up, {image} warmed in {result['warm_up_s']} s")
                    stop_sampling = asyncio.Event()
                    sampler = asyncio.create_task(probe.sample(stop_sampling, every=0.2))
                    try:
                        result |= await docker_phases(
                            args, bench, service, tg, sandbox, pool, redis, probe, client
                        )
                    finally:
                        stop_sampling.set()
                        await sampler
                    result["pg_connections_peak"] = probe.peak
                    result["warm_ups"] = getattr(parts.runtime, "warm_ups", None)
                    result["provision_steps_s"] = step_percentiles(
                        getattr(parts.converger, "recent_steps", ())
                    )
                    say(f"provisioning steps (p50/p95 s): {result['provision_steps_s']}")
                    say("removing the containers")
    finally:
        if pool is not None:
            await pool.close()
        await bench.drop_everything(redis)
        await redis.aclose()
        shutil.rmtree(bench.state_dir, ignore_errors=True)
        leftovers = await asyncio.to_thread(_clean_engine, client, bench.prefix, network, tag)
        if leftovers:
            result["left_behind"] = leftovers
        client.close()
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _clean_engine(client: Any, namespace: str, network: str, tag: str | None) -> list[str]:
    """Remove what the run made on the engine (containers of its namespace, its network, its image
    tag); what could not be removed."""
    import docker.errors

    left = []
    for container in client.containers.list(
        all=True, filters={"label": f"botfleet.namespace={namespace}"}
    ):
        try:
            container.remove(force=True, v=True)
        except docker.errors.DockerException:
            left.append(f"container {container.name}")
    if network != "host":
        for net in client.networks.list(names=[network]):
            if net.name != network:
                continue
            try:
                net.remove()
            except docker.errors.DockerException:
                left.append(f"network {network}")
    if tag is not None:
        try:
            client.images.remove(tag)
        except docker.errors.DockerException:
            left.append(f"image {tag}")
    return left


async def docker_phases(
    args: argparse.Namespace,
    bench: Bench,
    service: Any,
    tg: Any,
    sandbox: Any,
    pool: asyncpg.Pool,
    redis: Redis,
    probe: Any,
    client: Any,
) -> dict[str, Any]:
    from benchmarks.density import first_answer_ms, make_tenant, paced, redis_clients
    from deploy_worker.spec import instance_name

    out: dict[str, Any] = {}

    async def live(tenant: Any, t0: float) -> float:
        await wait_active(pool, tenant.row.id, 300)
        await tenant.visitor.send("/start")
        await tenant.visitor.wait_for_change(timeout=120)
        return round(time.monotonic() - t0, 2)

    async def arrive() -> tuple[Any, float]:
        t0 = time.monotonic()
        tenant = await make_tenant(service, tg, sandbox, bench)
        return tenant, await live(tenant, t0)

    # 3. the first container of the image, alone
    first, first_s = await arrive()
    out["first_after_build_s" if args.fresh_image else "first_s"] = first_s
    say(f"first tenant live {first_s} s after enqueue")

    # 4. the others, one every --arrival-s seconds
    tasks = []
    t_all = time.monotonic()
    for i in range(args.tenants - 1):
        tasks.append(asyncio.create_task(arrive()))
        if (i + 1) % 10 == 0:
            say(f"{i + 1} more enqueued")
        await asyncio.sleep(args.arrival_s)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        say(f"{len(failures)} tenants did not go live, e.g. {failures[0]!r}")
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    tenants = [first, *(t for t, _ in done)]
    times = [first_s, *(s for _, s in done)]
    out["live_errors"] = len(failures)
    out["enqueue_to_live_p50_s"] = round(statistics.median(times), 2)
    out["enqueue_to_live_p95_s"] = percentile(times, 0.95)
    out["enqueue_to_live_max_s"] = round(max(times), 2)
    out["arrivals_wall_s"] = round(time.monotonic() - t_all, 1)
    say(
        f"{len(tenants)} live: enqueue -> /start p50 {out['enqueue_to_live_p50_s']} s, "
        f"p95 {out['enqueue_to_live_p95_s']} s, max {out['enqueue_to_live_max_s']} s"
    )
    out["pg_connections_peak_start_up"] = probe.peak

    # 5. idle: memory, connections, CPU
    await asyncio.sleep(args.db_idle_s + 5.0)
    out["pg_connections_idle"] = await probe.count()
    out["redis_connections"] = await redis_clients(redis, bench.prefix)
    heartbeats = [service.names(t.slug).redis_prefix + "heartbeat" for t in tenants]
    out["live_tenants"] = sum([int(await redis.exists(key)) for key in heartbeats])
    gate = asyncio.Semaphore(8)

    async def memory(tenant: Any) -> dict[str, Any] | None:
        async with gate:
            try:
                container = await asyncio.to_thread(
                    client.containers.get, instance_name(bench.prefix, tenant.slug)
                )
                return await asyncio.to_thread(container_memory_all, client, container.id)
            except Exception as exc:  # a container gone: counted as missing below
                say(f"no memory reading for {tenant.slug}: {exc!r}")
                return None

    readings = [m for m in await asyncio.gather(*(memory(t) for t in tenants)) if m]
    out["memory_readings"] = len(readings)
    stats_mb = [m["stats_mb"] for m in readings]
    usage_mb = [m["usage_mb"] for m in readings]
    rss_mb = [m["rss_mb"] for m in readings if "rss_mb" in m]
    uss_mb = [m["uss_mb"] for m in readings if "uss_mb" in m]
    if stats_mb:
        out["container_mem_mb_p50"] = round(statistics.median(stats_mb), 1)
        out["container_mem_mb_max"] = round(max(stats_mb), 1)
        out["container_usage_mb_p50"] = round(statistics.median(usage_mb), 1)
        out["containers_total_gb"] = round(sum(stats_mb) / 1024, 2)
    if rss_mb:
        out["process_rss_mb"] = round(statistics.median(rss_mb), 1)
        out["process_rss_mb_max"] = round(max(rss_mb), 1)
        out["process_uss_mb"] = round(statistics.median(uss_mb), 1)
    out["host_cpu_busy_pct"] = await host_cpu_busy_pct(10.0)
    ids = [str(m["id"]) for m in readings]
    # over a whole health-check interval (30 s), so every container's check is in it once
    out["idle_cpu"] = await cpu_split(30.0, ids)
    say(f"idle fleet, cores used over 30 s: {out['idle_cpu']}")
    out["load_idle_fleet"] = round(os.getloadavg()[0], 2)
    say(
        f"idle: {out.get('container_mem_mb_p50')} MB per container (max "
        f"{out.get('container_mem_mb_max')}), bot RSS {out.get('process_rss_mb')} MB, host CPU "
        f"{out['host_cpu_busy_pct']} % busy, {out['pg_connections_idle']} PostgreSQL connections"
    )

    # 6. /start to random live tenants
    picks = [random.choice(tenants) for _ in range(args.samples)]
    samples = await paced(
        args.samples, args.rate, lambda i: first_answer_ms(picks[i].visitor), concurrency=1
    )
    ok = [s for s in samples if isinstance(s, float)]
    out["start_errors"] = len(samples) - len(ok)
    if ok:
        out["start_p50_ms"] = round(statistics.median(ok), 1)
        out["start_p99_ms"] = round(percentile(ok, 0.99) or 0, 1)
    return out
