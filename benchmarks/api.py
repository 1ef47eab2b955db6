"""Throughput and tail latency of ``GET /api/v1/tenants/{slug}`` beside a bare FastAPI endpoint.

Both are served the same way in the same run: one uvicorn process each (this script re-run with
``--serve``), loaded by one client process with ``--concurrency`` keep-alive HTTP/1.1 connections (a
minimal asyncio client, so the load generator costs little CPU next to the servers). The API side does
everything a real call does: API key check (cached), rate limit in Redis, the tenant row from
PostgreSQL, the masked token, the request id, metrics. The bare endpoint returns a constant body of the
same shape.

Both servers start together and are warmed up, then measured in alternating rounds (bare, api, api,
bare, ...; only one is loaded at a time), so drifting background load on a shared machine falls on
both sides alike; ``rps`` is all requests over all measured time of a side, ``p99_ms`` over all its
requests.

Reads ``BOTFLEET_DATABASE_URL`` and ``BOTFLEET_REDIS_URL`` (the control schema is migrated if needed),
creates one tenant and one API key, removes them at the end, and prints one JSON line::

    .venv/bin/python benchmarks/api.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_BARE_BODY = {
    "slug": "bench",
    "display_name": "Benchmark",
    "owner_telegram_ids": [1],
    "status": "provisioning",
    "status_reason": None,
    "desired_state": "running",
    "plan_code": None,
    "locale": "ru",
    "timezone": "Europe/Moscow",
    "bot_id": 1,
    "bot_username": None,
    "bot_token": "1:AA…yz",
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:00Z",
}


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/v1/tenants/{slug}")
    async def get_tenant(slug: str) -> dict[str, Any]:
        return {**_BARE_BODY, "slug": slug}

    return app


def serve(kind: str, port: int) -> None:
    from cli.api import serve as serve_like_botfleet_api

    if kind == "bare":
        app = bare_app()
    else:
        from control_plane.app import create_app
        from control_plane.middleware import install_edge
        from fleet.logs import setup_logging
        from fleet.settings import load_settings

        setup_logging("WARNING", "json")
        config = load_settings()
        app = install_edge(create_app(config), config)  # as `botfleet api` serves it
    serve_like_botfleet_api(app, host="127.0.0.1", port=port, log_level="warning")


# --- load generation --------------------------------------------------------------------------


async def _one_connection(
    port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(int(status_line.split()[1]))
    finally:
        writer.close()


async def load(
    port: int,
    path: str,
    *,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    keep_latencies: bool = False,
) -> dict[str, Any]:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_one_connection(port, request, stop_at, latencies, errors) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    result = _summary(seconds=elapsed, latencies=latencies, errors=len(errors))
    if keep_latencies:
        result.update(elapsed=elapsed, latencies=latencies)
    return result


def _summary(*, seconds: float, latencies: list[float], errors: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "rps": len(ordered) / seconds if seconds else 0.0,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000 if ordered else 0.0,
        "requests": len(ordered),
        "errors": errors,
    }


# --- setup and teardown -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


async def _setup(database_url: str, redis_url: str, master_key: str) -> dict[str, Any]:
    from redis.asyncio import Redis

    from fleet.apikeys import ApiKeyService
    from fleet.db import create_pool
    from fleet.migrations import migrate_control
    from fleet.secrets import SecretBox
    from fleet.tenants import TenantService
    from schemas.tenants import TenantCreate

    pool = await create_pool(database_url, max_size=2)
    redis = Redis.from_url(redis_url)
    try:
        await migrate_control(pool)
        slug = "bench_" + secrets.token_hex(5)
        token = f"{secrets.randbelow(10**9) + 10**9}:AA{secrets.token_urlsafe(33)[:33]}"
        await TenantService(pool=pool, redis=redis, secrets=SecretBox(master_key)).create(
            TenantCreate(
                slug=slug, display_name="Benchmark", owner_telegram_ids=[1], bot_token=token
            ),
            actor="benchmark",
            provision_now=False,
        )
        made = await ApiKeyService(pool=pool).create(
            scopes=["read"], name="benchmark", actor="benchmark"
        )
        prefix = "xa" + secrets.token_hex(4) + "_"
        return {"slug": slug, "key": made.key, "key_id": made.record["id"], "prefix": prefix}
    finally:
        await redis.aclose()
        await pool.close()


async def _teardown(database_url: str, redis_url: str, created: dict[str, Any]) -> None:
    import asyncpg
    from redis.asyncio import Redis

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM control.tenants WHERE slug = $1", created["slug"])
        await conn.execute("DELETE FROM control.api_keys WHERE id = $1", created["key_id"])
        await conn.execute(
            "DELETE FROM control.audit_log WHERE actor = 'benchmark' AND target IN ($1, $2)",
            created["slug"],
            f"apikey:{created['key_id']}",
        )
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    try:
        async for key in redis.scan_iter(f"{created['prefix']}:bf:ratelimit:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    database_url = os.environ["BOTFLEET_DATABASE_URL"]
    redis_url = os.environ["BOTFLEET_REDIS_URL"]
    master_key = os.environ.get("BOTFLEET_MASTER_KEY") or Fernet.generate_key().decode()
    seconds = 4.0 if args.quick else args.seconds
    warmup = 1.0 if args.quick else 3.0
    rounds = 2 if args.quick else 5
    created = await _setup(database_url, redis_url, master_key)
    env = {
        **os.environ,
        "BOTFLEET_MASTER_KEY": master_key,
        "BOTFLEET_API_RATE_LIMIT": "1000000000/minute",
        "BOTFLEET_LOG_LEVEL": "WARNING",
        "BOTFLEET_TENANT_ROLE_PREFIX": created["prefix"],  # its rate-limit keys are its own
        "PYTHONPATH": str(ROOT),
    }
    path = f"/api/v1/tenants/{created['slug']}"
    kinds = ("bare", "api")
    ports = {kind: _free_port() for kind in kinds}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    headers = {"bare": {}, "api": {"Authorization": f"Bearer {created['key']}"}}
    totals = {kind: {"seconds": 0.0, "latencies": [], "errors": 0} for kind in kinds}
    server_cpu = {kind: 0.0 for kind in kinds}
    try:
        for kind in kinds:
            processes[kind] = _spawn(kind, ports[kind], env)
        for kind in kinds:
            await _wait_ready(ports[kind])
            await load(
                ports[kind],
                path,
                headers=headers[kind],
                concurrency=args.concurrency,
                seconds=warmup,
            )
        # Interleaved rounds (bare, api, api, bare, ...): the machine's background load drifts
        # during a run, and both sides see the same drift. Only the measured side is loaded.
        for round_ in range(rounds):
            order = kinds if round_ % 2 == 0 else kinds[::-1]
            for kind in order:
                cpu_before = _cpu_seconds(processes[kind].pid)
                measured = await load(
                    ports[kind],
                    path,
                    headers=headers[kind],
                    concurrency=args.concurrency,
                    seconds=seconds / rounds,
                    keep_latencies=True,
                )
                server_cpu[kind] += _cpu_seconds(processes[kind].pid) - cpu_before
                totals[kind]["seconds"] += measured["elapsed"]
                totals[kind]["latencies"].extend(measured["latencies"])
                totals[kind]["errors"] += measured["errors"]
    finally:
        for process in processes.values():
            _stop(process)
        await _teardown(database_url, redis_url, created)
    results = {kind: _summary(**totals[kind]) for kind in kinds}
    api, bare = results["api"], results["bare"]
    return {
        "endpoint": "GET /api/v1/tenants/{slug}",
        "rps": round(api["rps"], 1),
        "p50_ms": round(api["p50_ms"], 2),
        "p99_ms": round(api["p99_ms"], 2),
        "errors": api["errors"],
        "baseline_rps": round(bare["rps"], 1),
        "baseline_p99_ms": round(bare["p99_ms"], 2),
        "ratio": round(api["rps"] / bare["rps"], 3) if bare["rps"] else 0.0,
        # Server CPU per request (the server process only; PostgreSQL and Redis not counted): a
        # steadier figure than rps on a busy machine.
        "server_cpu_us": round(server_cpu["api"] / api["requests"] * 1e6) if api["requests"] else 0,
        "baseline_server_cpu_us": (
            round(server_cpu["bare"] / bare["requests"] * 1e6) if bare["requests"] else 0
        ),
        "concurrency": args.concurrency,
        "seconds": seconds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Short run (< 30 s).")
    parser.add_argument("--seconds", type=float, default=15.0, help="Measured seconds per server.")
    parser.add_argument("--concurrency", type=int, default=32, help="Keep-alive connections.")
    parser.add_argument("--serve", choices=("bare", "api"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
