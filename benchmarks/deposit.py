"""Deposit benchmark (issue 19): what taking a deposit adds to a booking, in round trips and time.

One tenant bot runs in this process against the in-process Telegram emulator, on a throw-away tenant
(schema, role, Redis ACL user). Customers book one after another through the chat, from the tap on
"Confirm" on:

- plain: Confirm -> "You are booked";
- deposit (a fixed 500 on the service, a provider token set): Confirm -> the seat is held and the
  invoice shown -> the customer pays (``pre_checkout_query`` answered, ``successful_payment``) ->
  "You are booked".

Counted per booking: Bot API calls by method (getUpdates aside), updates the bot received, and SQL
statements the bot sent (a query logger on every pooled connection: ``BEGIN``/``COMMIT`` included,
so statements = round trips to PostgreSQL). Timed: Confirm -> answer, the pre-checkout answer as the
emulator saw it (Telegram allows 10 s), Pay -> "You are booked".

    python benchmarks/deposit.py            # 40 bookings of each kind
    python benchmarks/deposit.py --quick    # 10 of each

Reads BOTFLEET_DATABASE_URL / BOTFLEET_REDIS_URL; prints ONE JSON line on stdout; cleans up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
_HERE = str(SCRIPT.parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, str(ROOT))

from benchmarks.tenant_bot import _drop, _provision  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/botfleet_test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PROVIDER_TOKEN = "381764678:TEST:bench"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Meter:
    """Bot API calls, updates and SQL statements since the last :meth:`take`."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.statements = 0

    def record(self, record: Any) -> None:
        self.statements += 1
        if os.environ.get("BENCH_TRACE"):
            log("sql: " + " ".join(str(record.query).split())[:100])

    def take(self) -> tuple[Counter[str], int]:
        calls, statements = self.calls, self.statements
        self.calls, self.statements = Counter(), 0
        return calls, statements


def _instrument(meter: Meter) -> None:
    """Count Bot API calls (the emulator's method table) and SQL statements (the bot's pools)."""
    import tenant_bot.resources as resources
    from sandbox.telegram import methods

    for name, handler in list(methods.METHODS.items()):

        async def counted(ctx: Any, params: Any, _h: Any = handler, _n: str = name) -> Any:
            if _n != "getupdates":
                meter.calls[_n] += 1
            return await _h(ctx, params)

        methods.METHODS[name] = counted
    original = resources.init_connection

    async def init(conn: Any) -> None:
        await original(conn)
        conn.add_query_logger(meter.record)

    resources.init_connection = init


async def _seed(tenant_db: str) -> int:
    import asyncpg

    from tenant_bot.booking import BookingCore, WorkInterval

    pool = await asyncpg.create_pool(tenant_db, min_size=1, max_size=2)
    try:
        core = BookingCore(pool)
        await core.catalogue.update_settings(
            business_name="Bench",
            min_notice_minutes=0,
            time_zone="Europe/Moscow",
            max_active_per_customer=100,
        )
        service = await core.catalogue.create_service(name="Cut", duration_minutes=30, price=1500)
        staff = await core.catalogue.create_staff(name="Ivan", service_ids=[service.id])
        for weekday in range(7):
            await core.catalogue.set_working_hours(
                staff.id, weekday, [WorkInterval.parse("00:00-24:00")]
            )
        return service.id
    finally:
        await pool.close()


async def _configure_deposits(tenant_db: str, bot_token: str, service_id: int) -> None:
    import asyncpg

    from tenant_bot.booking import BookingCore, DepositKind, DepositRule
    from tenant_bot.payments import TokenVault

    pool = await asyncpg.create_pool(tenant_db, min_size=1, max_size=1)
    try:
        core = BookingCore(pool)
        await core.deposits.update_settings(
            provider_token=TokenVault(bot_token).seal(PROVIDER_TOKEN)
        )
        await core.deposits.set_rule(service_id, DepositRule(DepositKind.FIXED, Decimal(500)))
    finally:
        await pool.close()


async def _until(user: Any, predicate: Any, *, timeout: float = 20.0) -> dict[str, Any]:
    message: dict[str, Any] = await user.wait_for_bot_message(predicate, timeout=timeout)
    return message


def _text(needle: str) -> Any:
    return lambda m: needle in (m["text"] or "")


async def _to_summary(user: Any, day: str, time_label: str) -> None:
    from tests.support.chat_helpers import say, tap

    await say(user, "/book")
    await tap(user, "Cut · 30 min · 1\u202f500 ₽")
    await tap(user, day)
    await tap(user, time_label)
    await say(user, "Bench")
    await say(user, "+79161234567")


async def bench(n: int, database_url: str, redis_url: str) -> dict[str, Any]:
    import secrets

    from sandbox.telegram import RateLimits, TelegramEmulator, TelegramSandbox
    from schemas.runtime import TenantRuntime
    from tenant_bot.app import run

    meter = Meter()
    _instrument(meter)
    plane = await _provision(database_url, redis_url)
    names = plane["names"]
    service_id = await _seed(plane["database_url"])
    results: dict[str, Any] = {}
    try:
        async with (
            TelegramEmulator.start(rate_limits=RateLimits.disabled()) as tg,
            TelegramSandbox(tg.base_url) as sandbox,
        ):
            bot_id = 7_100_000_000 + secrets.randbelow(10**8)
            token = f"{bot_id}:{secrets.token_urlsafe(30)[:35].replace('-', 'a')}"
            await sandbox.register_bot(token, username=f"{names.slug}_bot")
            owner = await sandbox.create_user("Owner", language_code="en")
            await sandbox.as_user(bot_id=bot_id, user_id=owner["id"]).send("/start")
            runtime = TenantRuntime(
                slug=names.slug,
                bot_token=token,
                database_url=plane["database_url"],
                redis_url=plane["redis_url"],
                redis_prefix=names.redis_prefix,
                owner_ids=[owner["id"]],
                locale="en",
                telegram_api_base=tg.base_url,
            )
            stop = asyncio.Event()
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(
                run(runtime, stop=stop, rate_limit=(1000, 10), on_ready=ready.set_result)
            )
            await asyncio.wait_for(ready, 30)
            account = tg.world.bots[bot_id]
            users = [await sandbox.user(bot_id=bot_id, first_name=f"C{i}") for i in range(n)]
            # tomorrow and the day after in the calendar (each with 48 half-hour starts)
            from datetime import datetime, timedelta
            from zoneinfo import ZoneInfo

            today = datetime.now(ZoneInfo("Europe/Moscow")).date()
            days = [str((today + timedelta(days=k)).day) for k in (2, 3)]
            slots = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
            for kind, day in (("plain", days[0]), ("deposit", days[1])):
                if kind == "deposit":
                    await _configure_deposits(plane["database_url"], token, service_id)
                    await asyncio.sleep(0.2)
                calls: Counter[str] = Counter()
                statements = updates = 0
                confirm_ms: list[float] = []
                pay_ms: list[float] = []
                pre_checkout_ms: list[float] = []
                for i, user in enumerate(users):
                    await _to_summary(user, day, slots[i])
                    meter.take()
                    first_update = account.next_update_id
                    started = time.perf_counter()
                    await user.click("✅ Confirm")
                    if kind == "plain":
                        await _until(user, _text("You are booked"))
                        confirm_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        await _until(user, lambda m: m["invoice"] is not None)
                        confirm_ms.append((time.perf_counter() - started) * 1000)
                        paying = time.perf_counter()
                        paid = await user.pay()
                        assert paid["status"] == "paid", paid
                        pre_checkout_ms.append(paid["answered_in"] * 1000)
                        await _until(user, _text("You are booked"))
                        pay_ms.append((time.perf_counter() - paying) * 1000)
                    await asyncio.sleep(0.3)  # the owner notice and the loops' follow-ups
                    took, sql = meter.take()
                    calls.update(took)
                    statements += sql
                    updates += account.next_update_id - first_update
                results[kind] = {
                    "bookings": n,
                    "bot_api_calls_per_booking": round(sum(calls.values()) / n, 2),
                    "bot_api_calls_by_method": {k: round(v / n, 2) for k, v in calls.items()},
                    "updates_per_booking": round(updates / n, 2),
                    "sql_statements_per_booking": round(statements / n, 2),
                    "confirm_to_answer_p50_ms": round(statistics.median(confirm_ms), 1),
                    **(
                        {
                            "pre_checkout_answer_p50_ms": round(
                                statistics.median(pre_checkout_ms), 1
                            ),
                            "pre_checkout_answer_max_ms": round(max(pre_checkout_ms), 1),
                            "pay_to_booked_p50_ms": round(statistics.median(pay_ms), 1),
                        }
                        if pay_ms
                        else {}
                    ),
                }
                log(f"{kind}: {results[kind]}")
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await _drop(database_url, redis_url, names)
    plain, deposit = results["plain"], results["deposit"]
    results["extra_per_deposit_booking"] = {
        "bot_api_calls": round(
            deposit["bot_api_calls_per_booking"] - plain["bot_api_calls_per_booking"], 2
        ),
        "updates": round(deposit["updates_per_booking"] - plain["updates_per_booking"], 2),
        "sql_statements": round(
            deposit["sql_statements_per_booking"] - plain["sql_statements_per_booking"], 2
        ),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 bookings of each kind")
    parser.add_argument("--bookings", type=int, default=None)
    args = parser.parse_args()
    n = args.bookings or (10 if args.quick else 40)
    database_url = os.environ.get("BOTFLEET_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BOTFLEET_REDIS_URL", DEFAULT_REDIS_URL)
    print(json.dumps(asyncio.run(bench(n, database_url, redis_url))))


if __name__ == "__main__":
    main()
