"""Dependency faults, for real: PostgreSQL and Redis stop and come back while the platform runs.

One ``botfleet up`` (API, deploy worker with a running tenant bot, lifecycle, sales bot, the sandbox's
Telegram emulator and YooKassa stand-in) runs on a private PostgreSQL 15 cluster and a private Redis 7
(``conftest.py``). Each test stops one of them for ~10 s at a chosen moment:

- a customer is at the booking summary and taps Confirm while it is away: they are told politely
  (never silence, never a traceback), keep the summary, and once the dependency is back complete the
  booking with the same button — exactly one booking, nothing lost;
- another customer's booking has a reminder armed that falls due while the dependency is away: it is
  sent once it is back, exactly once;
- other customers and the owner using the bot meanwhile are told politely too;
- ``/readyz`` answers 503 while it is away and 200 after, and a new purchase and payment work after —
  with no process restarted (the ``up`` process and the tenant bot keep their pids).

The tenant bot reaches PostgreSQL as ``up`` runs it: through its PgBouncer where ``pgbouncer`` is
installed (``BOTFLEET_FAULTS_POOLER=off`` runs it direct, to compare). After PostgreSQL is back the first
Confirm books, behind the pooler too (its ``server_login_retry`` is 1 s, docs/SCALING.md).

The figures (outage length, seconds from each tap to its answer during the outage and after, time to
the first booking and to ``/readyz`` 200 after the dependency came back, counts) are printed as one
``FAULT-SUITE`` JSON line per test.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from sandbox.telegram import TelegramSandbox, TelegramUser
from tests.support.e2e_support import (
    AdminApi,
    buttons_of,
    buy_bot,
    press_pay,
    say,
    tap,
    text_of,
)
from tests.support.fault_support import FaultPlatform, ReadyzProbe, until

OUTAGE_S = 10.0
UNAVAILABLE = "temporarily unavailable"
BOOKED = "You are booked"
REMINDER = "⏰ Reminder"
TRACEBACK_WORDS = ("Traceback", "Error", "Exception", "asyncpg", "redis.")

pytestmark = pytest.mark.slow


# -- customers in the tenant bot ----------------------------------------------------------------------


def _slot_ts(button: dict[str, Any]) -> int | None:
    """The start (epoch seconds) of a time button (callback data ``t:<ts>:<staff>``)."""
    found = re.fullmatch(r"t:(\d+):\d+", str(button.get("callback_data") or ""))
    return int(found.group(1)) if found else None


async def _to_times(customer: TelegramUser) -> dict[str, Any]:
    """/book, the service, today: the message listing today's free times."""
    await say(customer, "/book", "Choose a service")
    await tap(customer, "Choose a day", pick=lambda t: t.startswith("Haircut"))
    return await tap(customer, "choose a time", pick=str.isdigit)  # the first free day: today


async def _to_summary(
    customer: TelegramUser, *, not_before: datetime, name: str, phone: str
) -> datetime:
    """Walk to the booking summary for the first free time at or after ``not_before``; its start."""
    times = await _to_times(customer)
    slots = [(ts, b["text"]) for b in buttons_of(times) if (ts := _slot_ts(b)) is not None]
    ts, label = next((ts, label) for ts, label in slots if ts >= not_before.timestamp())
    await tap(customer, "What name", text=label)
    await say(customer, name, "phone number")
    await say(customer, phone, "Please check your booking")
    return datetime.fromtimestamp(ts, UTC)


async def _press_confirm(
    customer: TelegramUser, *, waits: list[float] | None = None
) -> tuple[str, dict[str, Any]]:
    """Tap Confirm under the summary; (what the customer was told, the summary message after).
    ``waits`` gets how long the answer took (seconds)."""
    messages = [m for m in await customer.messages() if m["from"] == "bot"]
    summary = next(
        (m for m in reversed(messages) if any(b["text"] == "✅ Confirm" for b in buttons_of(m))),
        None,
    )
    assert summary is not None, f"the summary with its Confirm button is gone: {messages[-1:]!r}"
    told = await _polite(
        customer,
        lambda: customer.click("✅ Confirm", message_id=summary["message_id"]),
        waits=waits,
    )
    # a booking edits the summary in place; newer messages (an error told earlier) stay below it
    after = next(m for m in await customer.messages() if m["message_id"] == summary["message_id"])
    return told, after


async def _polite(
    user: TelegramUser,
    action: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 15.0,
    waits: list[float] | None = None,
) -> str:
    """Run ``action`` (a message or a tap) and return what the user was told: a callback alert or
    toast with text, or else the bot message that appeared or changed. Fails on silence.
    ``waits`` gets how long the answer took (seconds, from the tap to the first sign of it)."""
    before = await user.chat()
    seen_answers = len(before.get("callback_answers") or [])
    old = {m["message_id"]: (text_of(m), m.get("edit_date")) for m in before["messages"]}
    await action()
    tapped = time.monotonic()
    deadline = tapped + timeout
    while time.monotonic() < deadline:
        chat = await user.chat()
        answers = [a for a in (chat.get("callback_answers") or [])[seen_answers:] if a.get("text")]
        if answers:
            if waits is not None:
                waits.append(round(time.monotonic() - tapped, 1))
            return str(answers[-1]["text"])
        changed = [
            m
            for m in chat["messages"]
            if m["from"] == "bot" and old.get(m["message_id"]) != (text_of(m), m.get("edit_date"))
        ]
        if changed:
            if waits is not None:
                waits.append(round(time.monotonic() - tapped, 1))
            await asyncio.sleep(0.3)  # a screen may follow in two steps (answer, then edit)
            return text_of(changed[-1])
        await asyncio.sleep(0.2)
    raise AssertionError("the bot said nothing")


def _assert_polite(text: str, *, who: str) -> None:
    assert UNAVAILABLE in text, f"{who} was not told the service is unavailable: {text!r}"
    for word in TRACEBACK_WORDS:
        assert word not in text, f"{who} was shown an internal error: {text!r}"


# -- the owner's data, read as the operator would ----------------------------------------------------


async def _bookings(platform: FaultPlatform) -> dict[int, int]:
    """Active bookings per customer Telegram id."""
    conn = await asyncpg.connect(
        platform.servers.database_url, server_settings={"search_path": platform.schema}
    )
    try:
        rows = await conn.fetch(
            "SELECT c.telegram_user_id, count(*) AS n FROM bookings b"
            " JOIN customers c ON c.id = b.customer_id"
            " WHERE b.status IN ('pending', 'confirmed') GROUP BY 1"
        )
    finally:
        await conn.close()
    return {int(r["telegram_user_id"]): int(r["n"]) for r in rows}


async def _set_reminder_offsets(platform: FaultPlatform, offsets: list[int]) -> None:
    """The owner's reminder setting (minutes before the start)."""
    conn = await asyncpg.connect(
        platform.servers.database_url, server_settings={"search_path": platform.schema}
    )
    try:
        await conn.execute("UPDATE settings SET reminder_offsets_minutes = $1", offsets)
    finally:
        await conn.close()


async def _reminders_of(platform: FaultPlatform, customer_id: int) -> list[tuple[str, int]]:
    """(status, attempts) of each claimed reminder of the customer's bookings, and ``armed`` for
    each offset still waiting on a booking."""
    conn = await asyncpg.connect(
        platform.servers.database_url, server_settings={"search_path": platform.schema}
    )
    try:
        rows = await conn.fetch(
            "SELECT r.status, r.attempts FROM reminders r JOIN bookings b ON b.id = r.booking_id"
            " JOIN customers c ON c.id = b.customer_id WHERE c.telegram_user_id = $1"
            " UNION ALL SELECT 'armed', 0 FROM bookings b JOIN customers c ON c.id = b.customer_id"
            " CROSS JOIN LATERAL unnest(b.reminder_offsets) WHERE c.telegram_user_id = $1",
            customer_id,
        )
    finally:
        await conn.close()
    return [(r["status"], r["attempts"]) for r in rows]


async def _count(user: TelegramUser, fragment: str) -> int:
    return sum(1 for m in await user.messages() if m["from"] == "bot" and fragment in text_of(m))


def _next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _alive(platform: FaultPlatform) -> None:
    process = platform.up.process
    assert process is not None and process.poll() is None, (
        f"`botfleet up` died (exit {process.returncode if process else None}):\n"
        f"{platform.up.stderr_tail(60)}"
    )


async def _tenant_bot_pid(api: AdminApi, slug: str) -> str:
    return str((await api.get(f"/tenants/{slug}/deployment"))["container_id"])


# -- the scenario, for either dependency ----------------------------------------------------------------


async def _outage_scenario(
    platform: FaultPlatform,
    *,
    dependency: str,
    stop: Callable[[], None],
    start: Callable[[], None],
    capsys: pytest.CaptureFixture[str],
    align_reminder: bool,
) -> None:
    _alive(platform)
    api = AdminApi(platform.api_url, platform.admin_key)
    probe = ReadyzProbe(platform.api_url + "/readyz").start()
    figures: dict[str, Any] = {"dependency": dependency, "pooled": platform.pooled}
    tag = dependency[:2]
    stopped = False
    try:
        async with TelegramSandbox(platform.emulator_url) as sandbox:
            bot = platform.bot_id
            midway = await sandbox.user(bot_id=bot, first_name=f"Anna{tag}", language_code="en")
            booked = await sandbox.user(bot_id=bot, first_name=f"Boris{tag}", language_code="en")
            newcomer = await sandbox.user(bot_id=bot, first_name=f"Vera{tag}", language_code="en")
            owner = sandbox.as_user(bot_id=bot, user_id=platform.owner_id)
            pid_before = await _tenant_bot_pid(api, platform.slug)
            bookings_before = await _bookings(platform)
            await until(
                lambda: _readyz_is(platform, 200), "/readyz 200 before the outage", timeout=30
            )

            # The reminder of `booked`'s booking falls due at `due`, a whole minute (starts and
            # offsets are whole minutes); with `align_reminder` the outage starts 3 s before it,
            # else as soon as everyone is in place (the reminder falls due during or after it).
            due = _next_minute(datetime.now(UTC) + timedelta(seconds=18))

            chosen: asyncio.Future[datetime] = asyncio.get_running_loop().create_future()

            async def book_with_reminder() -> datetime:
                times = await _to_times(booked)
                slots = [(ts, b["text"]) for b in buttons_of(times) if (ts := _slot_ts(b))]
                ts, label = next(
                    (ts, lb) for ts, lb in slots if ts >= (due + timedelta(minutes=1)).timestamp()
                )
                start_at = datetime.fromtimestamp(ts, UTC)
                chosen.set_result(start_at)
                await _set_reminder_offsets(platform, [int((start_at - due).total_seconds() // 60)])
                await tap(booked, "What name", text=label)
                await say(booked, f"Boris {tag}", "phone number")
                await say(booked, "+79160000001", "Please check your booking")
                await tap(booked, BOOKED, text="✅ Confirm")
                return start_at

            async def walk_midway() -> datetime:
                # well after the slot `booked` chose, so the two never compete (at night or before
                # a closed day, the first free slot after `due` may be hours away)
                return await _to_summary(
                    midway,
                    not_before=max(due, await chosen) + timedelta(hours=1),
                    name=f"Anna {tag}",
                    phone="+79160000002",
                )

            booked_start, midway_start = await asyncio.gather(book_with_reminder(), walk_midway())
            assert await _reminders_of(platform, booked.id) == [("armed", 0)]
            assert due > datetime.now(UTC) + timedelta(seconds=3), "preparation took too long"
            if align_reminder:  # the outage starts 3 s before the reminder falls due
                await asyncio.sleep((due - datetime.now(UTC)).total_seconds() - 3)

            # -- the dependency goes away --------------------------------------------------------
            down_at, stopped = time.monotonic(), True
            due_mono = down_at + (due - datetime.now(UTC)).total_seconds()
            await asyncio.to_thread(stop)
            stopped_at = time.monotonic()

            waits_during: dict[str, list[float]] = {"confirm": [], "newcomer": [], "owner": []}

            async def midway_confirms() -> str:
                return (await _press_confirm(midway, waits=waits_during["confirm"]))[0]

            async def newcomer_books() -> str:
                return await _polite(
                    newcomer, lambda: newcomer.send("/book"), waits=waits_during["newcomer"]
                )

            async def owner_looks() -> str:
                told = await _polite(
                    owner, lambda: owner.send("/admin"), waits=waits_during["owner"]
                )
                if UNAVAILABLE in told:
                    return told
                assert "Owner menu" in told, told
                return await _polite(
                    owner, lambda: owner.click("📋 Today"), waits=waits_during["owner"]
                )

            async def buyer_arrives() -> str:
                buyer = await sandbox.user(
                    bot_id=platform.sales_bot_id, first_name=f"Zoya{tag}", language_code="en"
                )
                return await _polite(buyer, lambda: buyer.send("/start"))

            told = await asyncio.gather(
                midway_confirms(), newcomer_books(), owner_looks(), buyer_arrives()
            )
            figures["s_to_answer_during_outage"] = waits_during
            figures["told_during_outage"] = dict(
                zip(
                    ("customer_at_confirm", "newcomer", "owner", "sales_bot_buyer"),
                    told,
                    strict=True,
                )
            )
            for who, text in zip(
                ("customer at Confirm", "newcomer", "owner"), told[:3], strict=True
            ):
                _assert_polite(text, who=f"{who} during the {dependency} outage")
            # the sales bot may still greet a buyer from what it holds; it must never be silent or
            # show an internal error (`_polite` fails on silence)
            for word in TRACEBACK_WORDS:
                assert word not in told[3], f"the sales bot showed an internal error: {told[3]!r}"
            # ... and when it cannot answer, it says "try again in a minute", not "we broke"
            assert "went wrong" not in told[3], f"the sales bot blamed itself: {told[3]!r}"
            # the admin API refuses work it cannot do with 503 (and Retry-After), never a 500
            figures["api_code_during"] = (
                await api.http.get(f"/tenants/{platform.slug}/deployment")
            ).status_code
            await asyncio.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
            readyz_down = probe.codes_between(stopped_at + 1.0, time.monotonic())

            # -- it comes back ------------------------------------------------------------------
            await asyncio.to_thread(start)
            stopped = False
            up_at = time.monotonic()
            figures["outage_s"] = round(up_at - down_at, 1)

            waits_after: list[float] = []
            figures["s_to_answer_confirm_after_back"] = waits_after

            async def midway_completes() -> float:
                attempts = 0
                while True:
                    attempts += 1
                    told, summary = await _press_confirm(midway, waits=waits_after)
                    if BOOKED in text_of(summary):
                        figures["confirm_taps_after_back"] = attempts
                        return time.monotonic()
                    _assert_polite(told, who="customer retrying Confirm")
                    assert time.monotonic() - up_at < 60, "no booking a minute after recovery"
                    await asyncio.sleep(1.0)

            async def new_purchase() -> float:
                buyer = await sandbox.user(
                    bot_id=platform.sales_bot_id, first_name=f"Gleb{tag}", language_code="en"
                )
                token = platform.spare_tokens.pop(0)
                pay_url = await buy_bot(buyer, token=token, business=f"Gleb's {dependency} shop")
                await press_pay(pay_url)
                tenant = await until(
                    lambda: _active_tenant(api, int(token.split(":")[0])),
                    "the new purchase to be paid",
                    timeout=60,
                )
                payments = (await api.get("/payments", tenant=tenant["slug"]))["items"]
                assert [p["status"] for p in payments] == ["succeeded"], payments
                await api.wait_deployment(tenant["slug"], timeout=60)
                return time.monotonic()

            async def reminder_arrives() -> float:
                await until(lambda: _count(booked, REMINDER), "the reminder", timeout=60)
                return time.monotonic()

            booked_at, reminded_at, purchased_at = await asyncio.gather(
                midway_completes(), reminder_arrives(), new_purchase()
            )
            # a duplicate would come at the next background tick (every 5 s)
            await asyncio.sleep(max(0.0, reminded_at + 6 - time.monotonic()))
            ready_at = probe.first_after(up_at, 200)

            # -- what the owner's data and everyone's chats say ---------------------------------
            bookings_after = await _bookings(platform)
            reminders = await _reminders_of(platform, booked.id)
            reminder_messages = await _count(booked, REMINDER)
            figures.update(
                reminder_due_during_outage=down_at + 0.5 < due_mono < up_at,
                readyz_during=sorted(set(readyz_down)),
                readyz_after=await _readyz_code(platform),
                s_back_to_first_booking=round(booked_at - up_at, 1),
                s_back_to_readyz_200=round(ready_at - up_at, 1) if ready_at else None,
                s_back_to_reminder=round(reminded_at - up_at, 1),
                s_back_to_new_purchase_live=round(purchased_at - up_at, 1),
                bookings_attempted=2,
                bookings_made={
                    "booked_before": bookings_after.get(booked.id, 0)
                    - bookings_before.get(booked.id, 0),
                    "confirmed_across_outage": bookings_after.get(midway.id, 0),
                },
                reminders_sent=reminder_messages,
                reminder_rows=reminders,
            )
            figures["bookings_lost"] = sum(1 for n in figures["bookings_made"].values() if n < 1)
            figures["bookings_doubled"] = sum(1 for n in figures["bookings_made"].values() if n > 1)
            figures["reminders_duplicated"] = max(0, reminder_messages - 1)
            with capsys.disabled():
                print("\nFAULT-SUITE " + json.dumps(figures))

            assert readyz_down and set(readyz_down) == {503}, (
                f"/readyz during the {dependency} outage: {readyz_down}"
            )
            assert figures["readyz_after"] == 200
            assert bookings_after.get(midway.id) == 1, bookings_after
            if dependency == "postgresql":  # back means back: the first Confirm books
                assert figures["confirm_taps_after_back"] == 1, figures
            assert bookings_after.get(booked.id) == 1, bookings_after
            assert booked_start < midway_start
            if align_reminder:
                assert figures["reminder_due_during_outage"], "the outage missed the due time"
            assert reminder_messages == 1, f"reminder sent {reminder_messages} times"
            assert reminders == [("sent", 1)], reminders
            assert await _tenant_bot_pid(api, platform.slug) == pid_before, "tenant bot restarted"
            _alive(platform)
            # without PostgreSQL the API cannot read a deployment: 503; without Redis it can (its
            # rate limit lets requests through): 200. Never a 500.
            expected_api = {"postgresql": 503, "redis": 200}[dependency]
            assert figures["api_code_during"] == expected_api, (
                f"the admin API answered {figures['api_code_during']} while {dependency} was away"
            )
    finally:
        if stopped:  # a failure mid-outage must not leave the next test without its dependency
            await asyncio.to_thread(start)
        await probe.stop()
        await api.aclose()


async def _readyz_code(platform: FaultPlatform) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(platform.api_url + "/readyz")).status_code


async def _readyz_is(platform: FaultPlatform, code: int) -> bool:
    return await _readyz_code(platform) == code


async def _active_tenant(api: AdminApi, bot_id: int) -> dict[str, Any] | None:
    tenant = await api.tenant_of_bot(bot_id)
    return tenant if tenant["status"] == "active" else None


# -- the tests ------------------------------------------------------------------------------------------


async def test_postgres_stops_and_returns_mid_booking(
    fault_platform: FaultPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL is shut down (clients disconnected) and started again on the same port and data."""
    postgres = fault_platform.servers.postgres
    await _outage_scenario(
        fault_platform,
        dependency="postgresql",
        stop=lambda: postgres.stop("fast"),
        start=postgres.start,
        capsys=capsys,
        align_reminder=True,
    )


async def test_redis_stops_and_returns_mid_booking(
    fault_platform: FaultPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis is stopped (SIGTERM) and started again as production runs it: the ACL file keeps the
    tenant's ACL user and the append-only file its keys (conversations, heartbeat)."""
    redis = fault_platform.servers.redis
    await _outage_scenario(
        fault_platform,
        dependency="redis",
        stop=redis.stop,
        start=redis.start,
        capsys=capsys,
        # reminders do not touch Redis: no need to wait for the due minute before stopping it
        align_reminder=False,
    )
