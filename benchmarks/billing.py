"""Webhook benchmark: YooKassa notifications processed end to end, with 0 duplicate extensions.

N buyers check out (our payment row, then the YooKassa stand-in's create), pay on the stand-in, and
then every payment is notified R times (the first delivery plus replays) in shuffled order by C
concurrent senders from the stand-in's network address to ``POST /webhooks/yookassa`` served by
uvicorn. Each notification is processed exactly as in production: sender IP check, the payment fetched
from the stand-in's API over HTTP, checked against our row, applied in one transaction. Afterwards
every subscription must have been extended exactly once (one ``payment.succeeded`` event, one period,
one provision job); anything more counts as a duplicate extension. Everything created is removed.

    python benchmarks/billing.py            # 300 payments x 4 notifications, 32 senders
    python benchmarks/billing.py --quick    # 60 payments x 3 notifications, < 30 s

Reads BOTFLEET_DATABASE_URL (default: the test database) and BOTFLEET_REDIS_URL (unused by the
webhook; accepted for symmetry with the other benchmarks). Progress on stderr, ONE JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from tenacity import wait_none

from control_plane import problems
from control_plane.routes.billing import router
from fleet.billing.checkout import Order
from fleet.billing.config import BillingConfig
from fleet.billing.notifications import SenderPolicy
from fleet.billing.wiring import build_billing
from fleet.billing.yookassa import YooKassaClient
from fleet.bot_tokens import BotTokenChecker
from fleet.data_plane import install_platform
from fleet.db import create_pool
from fleet.migrations import migrate_control
from fleet.repositories.plans import PlanRepository
from fleet.secrets import SecretBox, generate_master_key
from sandbox.yookassa import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn

SENDER_IP = "127.0.0.77"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def run(*, payments: int, repeats: int, senders: int) -> dict[str, object]:
    dsn = os.environ.get(
        "BOTFLEET_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/botfleet_test"
    )
    pool = await create_pool(dsn, min_size=2, max_size=senders + 4)
    async with pool.acquire() as conn:
        await install_platform(conn)
    await migrate_control(pool)
    code = "bench" + secrets.token_hex(4)
    await PlanRepository(pool).insert(
        code=code, name="Bench", price=Decimal("990.00"), period_days=30
    )
    server: uvicorn.Server | None = None
    serve_task: asyncio.Task[None] | None = None
    try:
        async with YooKassaStandIn.start(host="127.0.0.1", port=0) as standin:
            provider = YooKassaClient(
                shop_id=DEFAULT_SHOP_ID,
                secret_key=DEFAULT_SECRET_KEY,
                api_url=standin.api_url,
                retry_wait=wait_none(),
            )
            tokens = BotTokenChecker(api_base="http://127.0.0.1:9")
            billing = build_billing(
                pool=pool,
                secrets=SecretBox(generate_master_key()),
                provider=provider,
                config=BillingConfig(return_url="https://t.me/botfleet_sales_bot"),
                senders=SenderPolicy(allowed=[f"{SENDER_IP}/32"]),
                tokens=tokens,
            )
            app = FastAPI()
            problems.install(app)
            app.include_router(router)
            app.state.billing = billing
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host="127.0.0.1",
                    port=port,
                    log_level="error",
                    lifespan="off",
                    proxy_headers=False,
                    backlog=4096,
                )
            )
            serve_task = asyncio.create_task(server.serve())
            while not server.started:
                if serve_task.done():
                    serve_task.result()  # the server could not start: raise why
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{port}/webhooks/yookassa"

            log(f"checking out {payments} purchases against the stand-in...")
            provider_ids: list[str] = []
            base = 7_000_000_000 + secrets.randbelow(10**9)
            for i in range(payments):
                bot_id = base + i
                checkout = await billing.checkout.purchase(
                    Order(
                        owner_telegram_id=10_000 + i,
                        plan_code=code,
                        display_name=f"Bench {i}",
                        bot_token=f"{bot_id}:AA{secrets.token_urlsafe(33)[:33]}",
                        bot_id=bot_id,
                        bot_username=f"bench{bot_id}_bot",
                    )
                )
                provider_id = await pool.fetchval(
                    "SELECT provider_payment_id FROM control.payments WHERE id = $1",
                    checkout.payment_id,
                )
                standin.succeed(provider_id)
                provider_ids.append(provider_id)

            deliveries = [pid for pid in provider_ids for _ in range(repeats)]
            random.shuffle(deliveries)
            queue: asyncio.Queue[str] = asyncio.Queue()
            for pid in deliveries:
                queue.put_nowait(pid)
            latencies: list[float] = []
            failures = 0

            async def sender(client: httpx.AsyncClient) -> None:
                nonlocal failures
                while True:
                    try:
                        pid = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    body = {
                        "type": "notification",
                        "event": "payment.succeeded",
                        "object": {"id": pid, "status": "succeeded"},
                    }
                    started = time.perf_counter()
                    answer = await client.post(url, json=body)
                    latencies.append((time.perf_counter() - started) * 1000)
                    if answer.status_code != 200:
                        failures += 1

            log(f"sending {len(deliveries)} notifications with {senders} concurrent senders...")
            transport = httpx.AsyncHTTPTransport(local_address=SENDER_IP)
            limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
            async with httpx.AsyncClient(transport=transport, limits=limits, timeout=30) as client:
                started = time.perf_counter()
                await asyncio.gather(*(sender(client) for _ in range(senders)))
                elapsed = time.perf_counter() - started

            rows = await pool.fetch(
                "SELECT t.id,"
                " (SELECT count(*) FROM control.events e WHERE e.tenant_id = t.id"
                "   AND e.kind = 'payment.succeeded') AS extensions,"
                " (SELECT count(*) FROM control.jobs j WHERE j.tenant_id = t.id) AS jobs,"
                " s.current_period_end - s.current_period_start AS period"
                " FROM control.tenants t LEFT JOIN control.subscriptions s ON s.tenant_id = t.id"
                " WHERE t.plan_code = $1",
                code,
            )
            duplicates = sum(max(0, r["extensions"] - 1) + max(0, r["jobs"] - 1) for r in rows)
            duplicates += sum(1 for r in rows if r["period"] not in (None, timedelta(days=30)))
            missing = sum(1 for r in rows if r["extensions"] == 0)
            await provider.aclose()
            await tokens.aclose()
        return {
            "benchmark": "billing_webhook",
            "payments": payments,
            "notifications": len(deliveries),
            "senders": senders,
            "notifications_per_s": round(len(deliveries) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "duplicate_extensions": duplicates,
            "missing_extensions": missing,
            "non_200": failures,
        }
    finally:
        if server is not None and serve_task is not None:
            server.should_exit = True
            await serve_task
        await cleanup(pool, code)
        await pool.close()


async def cleanup(pool: asyncpg.Pool, code: str) -> None:
    """Remove the benchmark's tenants (cascading to jobs, events, subscriptions), payments, plan."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM control.payments WHERE plan_code = $1", code)
        await conn.execute(
            "DELETE FROM control.audit_log WHERE target IN"
            " (SELECT slug FROM control.tenants WHERE plan_code = $1)",
            code,
        )
        await conn.execute("DELETE FROM control.tenants WHERE plan_code = $1", code)
        await conn.execute("DELETE FROM control.plans WHERE code = $1", code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under 30 seconds")
    parser.add_argument("--payments", type=int, help="purchases to notify about")
    parser.add_argument("--repeats", type=int, help="notifications per payment (1 + replays)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent senders")
    args = parser.parse_args()
    payments = args.payments or (60 if args.quick else 300)
    repeats = args.repeats or (3 if args.quick else 4)
    result = asyncio.run(run(payments=payments, repeats=repeats, senders=args.senders))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
