"""Journey benchmark: from the owner pressing Pay to the new bot answering /start, on a real
``botfleet up`` (process runtime), through public surfaces only.

    .venv/bin/python benchmarks/journey.py [--purchases 10] [--quick]

``BOTFLEET_DATABASE_URL`` / ``BOTFLEET_REDIS_URL`` name the servers (default: the local test servers,
``postgresql://postgres@127.0.0.1:5432/postgres`` and ``redis://127.0.0.1:6379/0``). It works in a
scratch database it creates there (and drops), with its own role prefix (roles, schemas, Redis ACL
users) and a temporary folder for ``up``'s data; everything is removed at the end.

Owners buy in the sales bot concurrently (each at a person's pace) up to the payment page; then, one
purchase at a time, the owner presses Pay on the YooKassa checkout page and at once sends /start to
the bot they bought; the clock stops when the bot's answer is in the chat. The webhook, the payment
transaction, the provision job, the tenant's role/schema/migrations/ACL user, the forked bot's start
and its first long poll are all inside the measurement.

Progress goes to stderr; stdout gets ONE JSON line: ``p50_s``, ``p90_s``, ``max_s``, ``min_s``,
``purchases``, ``goal_s`` (5) and ``ratio`` (p50 / goal; under 1 meets the goal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The e2e tests' driver of a running `up` (subprocess, scratch database, people in the sandbox).
sys.path[:0] = [str(ROOT)]

from sandbox.telegram import TelegramSandbox, TelegramUser  # noqa: E402
from tests.support.e2e_support import (  # noqa: E402
    UpProcess,
    any_message,
    buy_bot,
    clean_env,
    drop_redis_users,
    free_port,
    press_pay,
    sales_bot_id,
    scratch_database,
)

GOAL_S = 5.0
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def new_token() -> str:
    """A fresh bot token, as @BotFather would make one."""
    bot_id = 6_000_000_000 + secrets.randbelow(10**9)
    return f"{bot_id}:AA{secrets.token_urlsafe(33)[:33]}"


async def prepare(sandbox: TelegramSandbox, sales_bot: int, n: int) -> tuple[str, TelegramUser]:
    """One owner buys a fresh bot up to the payment page; the pay URL and the owner."""
    token = new_token()
    bot_id = int(token.split(":")[0])
    await sandbox.register_bot(token, username=f"bench{bot_id}_bot", first_name=f"Bench {n}")
    owner = await sandbox.user(bot_id=sales_bot, first_name=f"Owner {n}", language_code="en")
    url = await buy_bot(owner, token=token, business=f"Bench business {n}")
    return url, sandbox.as_user(bot_id=bot_id, user_id=owner.id)


async def pay_until_start_answered(url: str, owner_in_bot: TelegramUser) -> float:
    """Seconds from pressing Pay to the bought bot's answer to /start (sent right after paying:
    Telegram keeps it until the bot's first poll)."""
    started = time.perf_counter()
    await press_pay(url)
    await owner_in_bot.send("/start")
    await any_message(owner_in_bot, "", timeout=120)
    return time.perf_counter() - started


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def measure(database_url: str, redis_url: str, purchases: int) -> dict[str, Any]:
    prefix = "bm" + secrets.token_hex(3) + "_"
    work = Path(tempfile.mkdtemp(prefix="botfleet-journey-"))
    up: UpProcess | None = None
    try:
        async with scratch_database(database_url, role_prefix=prefix) as db_url:
            env = clean_env(
                BOTFLEET_DATABASE_URL=db_url,
                BOTFLEET_REDIS_URL=redis_url,
                BOTFLEET_TENANT_ROLE_PREFIX=prefix,
                BOTFLEET_RUNTIME="process",
                BOTFLEET_LOG_LEVEL="WARNING",
            )
            up = UpProcess(
                cwd=work, env=env, logs=work / "logs", port=free_port(), data_dir=work / "data"
            )
            started = time.perf_counter()
            banner = await up.start()
            progress(f"botfleet up in {time.perf_counter() - started:.1f} s")
            async with TelegramSandbox(banner.emulator_url, timeout=30) as sandbox:
                sales_bot = await sales_bot_id(sandbox)
                checkouts = await asyncio.gather(
                    *(prepare(sandbox, sales_bot, n) for n in range(1, purchases + 1))
                )
                progress(f"{purchases} owners at the payment page")
                samples = []
                for n, (url, owner_in_bot) in enumerate(checkouts, start=1):
                    samples.append(await pay_until_start_answered(url, owner_in_bot))
                    progress(f"purchase {n}: Pay -> /start answered in {samples[-1]:.2f} s")
            code = await up.interrupt()
            if code != 0:
                progress(f"warning: botfleet up exited with {code}")
    finally:
        if up is not None:
            up.kill()
        await drop_redis_users(redis_url, role_prefix=prefix)
        shutil.rmtree(work, ignore_errors=True)
    p50 = statistics.median(samples)
    return {
        "benchmark": "journey",
        "runtime": "process",
        "purchases": purchases,
        "p50_s": round(p50, 3),
        "p90_s": round(percentile(samples, 0.9), 3),
        "max_s": round(max(samples), 3),
        "min_s": round(min(samples), 3),
        "goal_s": GOAL_S,
        "ratio": round(p50 / GOAL_S, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=10, help="purchases to time (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 purchases")
    args = parser.parse_args()
    purchases = 3 if args.quick else args.purchases
    database_url = os.environ.get("BOTFLEET_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BOTFLEET_REDIS_URL") or DEFAULT_REDIS_URL
    result = asyncio.run(measure(database_url, redis_url, purchases))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
