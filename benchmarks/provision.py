"""Provisioning benchmark: enqueue -> bot answers /start, a reconcile pass over 200 tenants, and the
process runtime's memory per tenant next to a fresh interpreter's.

    BOTFLEET_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/botfleet \\
    BOTFLEET_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python benchmarks/provision.py [--quick]

Works in a scratch database it creates on that server (and drops), with its own role prefix, Redis ACL
users and process state directory, and the Telegram emulator in-process; everything is removed at the
end. Prints progress to stderr and ONE JSON line to stdout:

- ``p50_s`` / ``p95_s``: docker runtime, warm image, enqueue -> the bot answered /start (null, with
  ``docker_reason``, when no engine answers or the image is missing);
- ``process_p50_s`` / ``process_p95_s``: the same on the process runtime;
- ``reconcile_200_s``: one reconcile pass over 200 in-sync tenants (median of 3; the runtime listing is
  an in-memory stand-in, so this is the worker's own cost: one query, 200 spec hashes, heartbeats);
- ``process_uss_mb``: mean unique memory (USS, ``smaps_rollup``) of idle forked tenant bots;
  ``fresh_rss_mb``: RSS of the same bot started in a fresh interpreter; ``uss_ratio`` = their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy_worker.runtimes.base import EnsureResult, InstanceState, InstanceStatus  # noqa: E402
from deploy_worker.runtimes.process import read_memory  # noqa: E402
from deploy_worker.service import open_worker  # noqa: E402
from deploy_worker.spec import RuntimeSpec  # noqa: E402
from fleet.data_plane import install_platform  # noqa: E402
from fleet.db import create_pool  # noqa: E402
from fleet.migrations import migrate_control  # noqa: E402
from fleet.repositories.tenants import Tenant  # noqa: E402
from fleet.secrets import SecretBox, generate_master_key  # noqa: E402
from fleet.settings import Settings, load_settings  # noqa: E402
from fleet.tenants import TenantService  # noqa: E402
from sandbox.telegram import TelegramEmulator, TelegramSandbox  # noqa: E402
from sandbox.testing import fast_emulator_config, new_bot_token  # noqa: E402
from schemas.tenants import TenantCreate  # noqa: E402

IMAGE = os.environ.get("BOTFLEET_TENANT_IMAGE", "botfleet:latest")


def say(message: str) -> None:
    print(f"[provision-bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 3)


class Bench:
    """Scratch database, emulator, settings and tenants of one run."""

    def __init__(self, *, database_url: str, redis_url: str, quick: bool) -> None:
        self.base_url = database_url
        self.redis_url = redis_url
        self.quick = quick
        self.prefix = "bench" + secrets.token_hex(3) + "_"
        self.db_name = "botfleet_bench_" + secrets.token_hex(4)
        self.master_key = generate_master_key()
        self.state_dir = Path(tempfile.mkdtemp(prefix="botfleet-bench-"))
        self.counter = 0

    @property
    def database_url(self) -> str:
        return urlunsplit(urlsplit(self.base_url)._replace(path=f"/{self.db_name}"))

    def settings(self, runtime: str, telegram_base: str, **extra: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "master_key": self.master_key,
            "tenant_role_prefix": self.prefix,
            "telegram_api_base": telegram_base,
            "runtime": runtime,
            "tenant_image": IMAGE,
            "tenant_network": "host",
            "process_state_dir": str(self.state_dir / runtime),
            "worker_concurrency": 8,
            "worker_poll_s": 0.5,
            "reconcile_interval_s": 3600.0,
            "heartbeat_timeout_s": 90.0,
            "stop_timeout_s": 3.0,
            "log_level": "WARNING",
            "process_preload": os.environ.get("BENCH_PRELOAD", "aiogram,tenant_bot.*"),
        }
        values.update(extra)
        return load_settings(**values)

    def next_slug(self, kind: str) -> str:
        self.counter += 1
        return f"b{kind}{self.counter:03d}"

    async def create_database(self) -> None:
        admin = await asyncpg.connect(
            urlunsplit(urlsplit(self.base_url)._replace(path="/postgres"))
        )
        try:
            await admin.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            await admin.close()
        pool = await create_pool(self.database_url, max_size=2)
        try:
            async with pool.acquire() as conn:
                await install_platform(conn)
            await migrate_control(pool)
        finally:
            await pool.close()

    async def drop_everything(self, redis: Redis) -> None:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self.database_url)
            try:
                for (role,) in await conn.fetch(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", self.prefix
                ):
                    await conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        role,
                    )
                    await conn.execute(f'DROP OWNED BY "{role}"')
                    await conn.execute(f'DROP ROLE "{role}"')
            finally:
                await conn.close()
        admin = await asyncpg.connect(
            urlunsplit(urlsplit(self.base_url)._replace(path="/postgres"))
        )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        finally:
            await admin.close()
        for user in await redis.execute_command("ACL", "USERS"):
            user = user.decode() if isinstance(user, bytes) else user
            if user.startswith(self.prefix):
                await redis.execute_command("ACL", "DELUSER", user)
        ours = [k async for k in redis.scan_iter(match=f"{self.prefix}:*", count=1000)]
        if ours:
            await redis.unlink(*ours)


async def create_tenant(
    service: TenantService, emulator: TelegramEmulator, slug: str, *, enqueue: bool = True
) -> tuple[Tenant, int]:
    token = new_bot_token()
    emulator.register_bot(token, username=f"{slug}_bot")
    data = TenantCreate(
        slug=slug,
        display_name=f"Bench {slug}",
        owner_telegram_ids=[4242],
        bot_token=token,
        locale="en",
    )
    tenant = await service.create(
        data, actor="bench", provision_now=False, enqueue_provision=enqueue
    )
    return tenant, int(token.split(":")[0])


async def wait_active(pool: asyncpg.Pool, tenant_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await pool.fetchval("SELECT status FROM control.tenants WHERE id = $1", tenant_id)
        if status == "active":
            return
        if status == "error":
            raise RuntimeError(
                await pool.fetchval(
                    "SELECT status_reason FROM control.tenants WHERE id = $1", tenant_id
                )
            )
        await asyncio.sleep(0.01)
    raise TimeoutError(f"tenant {tenant_id} not active within {timeout}s")


@asynccontextmanager
async def running(settings: Settings, pool: asyncpg.Pool, redis: Redis) -> AsyncIterator[Any]:
    async with open_worker(
        settings, pool=pool, redis=redis, secrets=SecretBox(settings.require("master_key"))
    ) as parts:
        task = asyncio.create_task(parts.worker.run())
        try:
            yield parts
        finally:
            parts.worker.stop()
            await task
            for instance in await parts.runtime.list_by_label():
                with contextlib.suppress(Exception):
                    await parts.runtime.remove(instance.slug)


async def time_to_start(
    bench: Bench,
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    emulator: TelegramEmulator,
    kind: str,
    count: int,
) -> list[float]:
    """Enqueue tenants one after another; each: enqueue -> active -> its bot answers /start."""
    service = TenantService(
        pool=pool, redis=redis, secrets=SecretBox(bench.master_key), role_prefix=bench.prefix
    )
    durations = []
    async with running(settings, pool, redis), TelegramSandbox(emulator.base_url) as sandbox:
        for _ in range(count):
            slug = bench.next_slug(kind)
            started = time.monotonic()
            tenant, bot_id = await create_tenant(service, emulator, slug)
            await wait_active(pool, tenant.id, 120)
            user = await sandbox.user(bot_id=bot_id, first_name="Bench")
            answer = await user.ask("/start", timeout=60)
            if not answer.get("text"):
                raise RuntimeError(f"{slug} did not answer /start")
            durations.append(time.monotonic() - started)
            say(f"{kind} {slug}: answered /start {durations[-1]:.2f}s after enqueue")
    return durations


async def process_memory(
    bench: Bench,
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    emulator: TelegramEmulator,
    count: int,
) -> float:
    """Mean USS (MB) of ``count`` idle forked tenant bots."""
    service = TenantService(
        pool=pool, redis=redis, secrets=SecretBox(bench.master_key), role_prefix=bench.prefix
    )
    async with running(settings, pool, redis) as parts:
        tenants = [
            (await create_tenant(service, emulator, bench.next_slug("uss")))[0]
            for _ in range(count)
        ]
        for tenant in tenants:
            await wait_active(pool, tenant.id, 180)
        await asyncio.sleep(2.0)  # idle: long polls parked, start-up garbage settled
        usages = [parts.runtime.memory_of(t.slug) for t in tenants]  # type: ignore[attr-defined]
        uss = [u["uss"] / 2**20 for u in usages if u]
        say(f"process runtime: {len(uss)} idle bots, USS mean {statistics.mean(uss):.1f} MB")
        return round(statistics.mean(uss), 2)


async def fresh_interpreter_rss(
    bench: Bench, settings: Settings, pool: asyncpg.Pool, redis: Redis, emulator: TelegramEmulator
) -> float:
    """RSS (MB) of one tenant bot started the classic way: a fresh interpreter (``python -m tenant_bot``)."""
    service = TenantService(
        pool=pool, redis=redis, secrets=SecretBox(bench.master_key), role_prefix=bench.prefix
    )
    tenant, _ = await create_tenant(service, emulator, bench.next_slug("fresh"), enqueue=False)
    await service.ensure_data_plane(tenant)
    from deploy_worker.spec import SpecBuilder

    spec = SpecBuilder(settings=settings, namespace=bench.prefix).build(
        tenant, service.secrets_of(tenant), service.names(tenant.slug)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")} | dict(spec.env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tenant_bot",
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        key = service.names(tenant.slug).redis_prefix + "heartbeat"
        deadline = time.monotonic() + 90
        while not await redis.exists(key):
            if time.monotonic() > deadline or proc.returncode is not None:
                raise RuntimeError("the fresh-interpreter bot did not start")
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        memory = read_memory(proc.pid) or {"rss": 0}
        say(f"fresh interpreter bot: RSS {memory['rss'] / 2**20:.1f} MB")
        return round(memory["rss"] / 2**20, 2)
    finally:
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        if proc.returncode is None:
            proc.kill()


class StaticRuntime:
    """An in-memory runtime reporting given instances: isolates the reconciler's own cost."""

    kind = "static"

    def __init__(self, namespace: str, instances: list[InstanceStatus]) -> None:
        self.namespace = namespace
        self._instances = instances

    async def list_by_label(self, labels: dict[str, str] | None = None) -> list[InstanceStatus]:
        return list(self._instances)

    async def status(self, slug: str) -> InstanceStatus:
        return next((i for i in self._instances if i.slug == slug), InstanceStatus.missing(slug))

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        # The reconcile pass only queues jobs for drift; it never starts bots itself.
        raise AssertionError(f"reconcile benchmark: unexpected ensure({spec.slug})")

    async def stop(self, slug: str) -> bool:
        return False

    async def remove(self, slug: str) -> bool:
        return False

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        return ""

    async def close(self) -> None:
        return None


async def reconcile_pass(
    bench: Bench,
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    emulator: TelegramEmulator,
    count: int,
) -> float:
    """Median time of a reconcile pass over ``count`` active, in-sync tenants."""
    from datetime import UTC, datetime, timedelta

    from deploy_worker.reconciler import Reconciler
    from deploy_worker.spec import SpecBuilder

    # Only the reconcile tenants: earlier phases' tenants have no instances any more.
    await pool.execute("DELETE FROM control.tenants")
    box = SecretBox(bench.master_key)
    service = TenantService(pool=pool, redis=redis, secrets=box, role_prefix=bench.prefix)
    specs = SpecBuilder(settings=settings, namespace=bench.prefix)
    instances = []
    started_at = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(count):
        tenant, _ = await create_tenant(service, emulator, bench.next_slug("rec"), enqueue=False)
        await pool.execute("UPDATE control.tenants SET status = 'active' WHERE id = $1", tenant.id)
        spec = specs.build(tenant, service.secrets_of(tenant), service.names(tenant.slug))
        await pool.execute(
            "INSERT INTO control.deployments (tenant_id, runtime, status, image, spec_hash, restart_count)"
            " VALUES ($1, 'static', 'running', $2, $3, 0)",
            tenant.id,
            spec.image,
            spec.spec_hash,
        )
        await redis.set(service.names(tenant.slug).redis_prefix + "heartbeat", "{}", ex=600)
        instances.append(
            InstanceStatus(
                slug=tenant.slug,
                state=InstanceState.RUNNING,
                spec_hash=spec.spec_hash,
                instance_id=tenant.slug,
                started_at=started_at,
            )
        )
    runtime = StaticRuntime(bench.prefix, instances)
    reconciler = Reconciler(pool=pool, redis=redis, runtime=runtime, specs=specs, tenants=service)  # type: ignore[arg-type]
    times = []
    for _ in range(3):
        report = await reconciler.run_once()
        if report.enqueued or report.orphans_removed or report.errors:
            raise RuntimeError(f"the fleet was not in sync: {report}")
        times.append(report.duration_s)
    say(f"reconcile pass over {count} tenants: {times}")
    await pool.execute("DELETE FROM control.tenants WHERE slug LIKE 'brec%'")
    return round(statistics.median(times), 4)


def docker_available() -> str | None:
    """None when an engine answers and the image exists, else why not."""
    from deploy_worker.runtimes import docker_client

    client = docker_client(timeout=5)
    if client is None:
        return "no Docker engine answers"
    try:
        client.images.get(IMAGE)  # type: ignore[attr-defined]
    except Exception:
        return f"image {IMAGE} is not built (.ci/build-image.sh)"
    finally:
        client.close()  # type: ignore[attr-defined]
    return None


async def main(quick: bool) -> dict[str, Any]:
    database_url = os.environ.get(
        "BOTFLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/botfleet"
    )
    redis_url = os.environ.get("BOTFLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
    bench = Bench(database_url=database_url, redis_url=redis_url, quick=quick)
    sizes = (
        {"process": 3, "docker": 0, "uss": 5, "reconcile": 200}
        if quick
        else {"process": 20, "docker": 20, "uss": 50, "reconcile": 200}
    )
    result: dict[str, Any] = {"quick": quick, "tenants": sizes}
    started = time.monotonic()
    redis = Redis.from_url(redis_url)
    await bench.create_database()
    pool = await create_pool(bench.database_url, max_size=20)
    try:
        async with TelegramEmulator.start(
            host="127.0.0.1", port=0, config=fast_emulator_config()
        ) as emulator:
            base = emulator.base_url
            process = bench.settings("process", base)
            times = await time_to_start(
                bench, process, pool, redis, emulator, "proc", sizes["process"]
            )
            result["process_p50_s"], result["process_p95_s"] = (
                percentile(times, 0.5),
                percentile(times, 0.95),
            )

            reason = (
                docker_available()
                if sizes["docker"]
                else "skipped by --quick (a container start costs seconds)"
            )
            if reason is None:
                times = await time_to_start(
                    bench,
                    bench.settings("docker", base),
                    pool,
                    redis,
                    emulator,
                    "dock",
                    sizes["docker"],
                )
                result["p50_s"], result["p95_s"] = percentile(times, 0.5), percentile(times, 0.95)
            else:
                result["p50_s"] = result["p95_s"] = None
                result["docker_reason"] = reason
                say(f"docker skipped: {reason}")

            result["reconcile_200_s"] = await reconcile_pass(
                bench, process, pool, redis, emulator, sizes["reconcile"]
            )
            result["process_uss_mb"] = await process_memory(
                bench, process, pool, redis, emulator, sizes["uss"]
            )
            result["fresh_rss_mb"] = await fresh_interpreter_rss(
                bench, process, pool, redis, emulator
            )
            result["uss_ratio"] = (
                round(result["process_uss_mb"] / result["fresh_rss_mb"], 4)
                if result["fresh_rss_mb"]
                else None
            )
    finally:
        await pool.close()
        await bench.drop_everything(redis)
        await redis.aclose()
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tenants (under 30 s)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
