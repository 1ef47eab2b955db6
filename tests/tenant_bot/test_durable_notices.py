"""The new-booking notices are durable and sent once; a booking that committed is never "unavailable".

Real parts: the bot runs against the emulator, PostgreSQL refuses the bot's role for real (its
connection limit set to 0 and its backends terminated, right after the booking's commit), and the
notices go out through the bot's own background loop (two loops at once, one that stops halfway).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from tenant_bot.background import BackgroundWorker
from tenant_bot.booking import Actor, BookingCore
from tenant_bot.booking.notices import DEFAULT_LEASE
from tenant_bot.delivery import Outcome
from tests.support.chat_helpers import say, tap

NEW = "🆕 New booking"
BOOKED_LATE = "✅ Your booking went through"
TUE = date(2030, 1, 8)


def _texts(messages: list[dict[str, Any]], needle: str) -> list[str]:
    return [m["text"] for m in messages if m["from"] == "bot" and needle in (m["text"] or "")]


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def _to_summary(user: Any, *, name: str, time: str = "10:00") -> None:
    await say(user, "/book")
    await tap(user, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(user, "8")
    await tap(user, time)
    await say(user, name)
    await say(user, "+79161234567")


async def _admin(database_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _refuse(database_url: str, role: str) -> None:
    """PostgreSQL refuses ``role`` from now on: no new connection, the open ones terminated. Run in
    a thread and waited for, so the refusal is in place before the caller's next statement."""
    statements = (
        f'ALTER ROLE "{role}" CONNECTION LIMIT 0',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'",
    )
    worker = threading.Thread(target=lambda: asyncio.run(_admin(database_url, *statements)))
    worker.start()
    worker.join()


async def test_a_refusal_between_commit_and_read_back_loses_nothing(
    start_bot: Any, tenant: Any, database_url: str, clock: Any
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await _to_summary(anna, name="Anna")
    core = bot.resources.core
    committed = core.bookings.on_change
    role = tenant.names.role

    def refuse_after_commit() -> None:  # called by the core right after the booking committed
        assert committed is not None
        committed()
        core.bookings.on_change = committed
        _refuse(database_url, role)

    core.bookings.on_change = refuse_after_commit
    try:
        answer = await tap(anna, "✅ Confirm", timeout=15)
        # told the truth: most likely booked, a confirmation will follow; not "unavailable"
        assert "most likely gone through" in answer["text"], answer["text"]
        assert "temporarily unavailable" not in answer["text"]
        assert not _texts(await bot.owner.messages(), NEW)  # nothing sent from the handler
        assert bot.resources.core.outages.snapshot().get("database", 0) >= 1
    finally:
        await _admin(database_url, f'ALTER ROLE "{role}" CONNECTION LIMIT -1')

    # The database is back: the owner's notice goes out once, from the background loop.
    async def owner_told() -> bool:
        bot.resources.background.wake.set()
        return len(_texts(await bot.owner.messages(), NEW)) == 1

    await _until(owner_told, timeout=30)
    # The customer's confirmation follows once the checkout's grace is over (it never showed it).
    clock.advance(timedelta(seconds=61))

    async def anna_told() -> bool:
        bot.resources.background.wake.set()
        return len(_texts(await anna.messages(), BOOKED_LATE)) == 1

    await _until(anna_told, timeout=30)
    [confirmation] = _texts(await anna.messages(), BOOKED_LATE)
    assert "Haircut" in confirmation and "Tue 8 Jan, 10:00" in confirmation
    for _ in range(3):  # later passes send nothing again
        bot.resources.background.wake.set()
        await asyncio.sleep(0.3)
    assert len(_texts(await bot.owner.messages(), NEW)) == 1
    assert len(_texts(await anna.messages(), BOOKED_LATE)) == 1
    [booking] = await tenant.core.bookings.for_day(TUE)
    assert booking.customer_name == "Anna"


async def test_a_double_confirm_books_once_and_tells_the_owner_once(
    start_bot: Any, tenant: Any, clock: Any
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await _to_summary(anna, name="Anna")
    await asyncio.gather(anna.click("✅ Confirm"), anna.click("✅ Confirm"))

    async def owner_told() -> bool:
        bot.resources.background.wake.set()
        return len(_texts(await bot.owner.messages(), NEW)) >= 1

    await _until(owner_told, timeout=30)
    clock.advance(timedelta(seconds=61))  # past the grace: the confirmation was shown, not owed
    for _ in range(3):
        bot.resources.background.wake.set()
        await asyncio.sleep(0.3)
    assert len(_texts(await bot.owner.messages(), NEW)) == 1
    assert not _texts(await anna.messages(), BOOKED_LATE)
    assert len(await tenant.core.bookings.for_day(TUE)) == 1
    assert len(_texts(await anna.messages(), "You are booked")) >= 1


async def _linked_staff(bot: Any, tenant: Any) -> Any:
    """The booked staff member's Telegram account, linked (they get the notice too)."""
    member = await bot.customer("Ivan the master")
    await say(member, "/start")
    await tenant.core.catalogue.update_staff(tenant.staff_id, telegram_user_id=member.id)
    return member


async def test_fifty_customers_at_once_two_loops_each_notice_once(
    start_bot: Any, tenant: Any, clock: Any
) -> None:
    bot = await start_bot(background=False)
    await say(bot.owner, "/start")
    staff = await _linked_staff(bot, tenant)
    core = tenant.core
    customers = [
        await core.customers.register(10_000 + i, name=f"C{i:02d}", phone="+79160000000")
        for i in range(50)
    ]
    starts = [
        datetime(2030, 1, 8 + i // 8, 7 + i % 8, 0, tzinfo=UTC)  # 10:00-17:00 Moscow, 7 days
        for i in range(50)
    ]
    booked = await asyncio.gather(
        *(
            core.bookings.book(
                customer_id=c.id,
                service_id=tenant.service_id,
                start=start,
                actor=Actor.customer(c.telegram_user_id),  # as the checkout books
            )
            for c, start in zip(customers, starts, strict=True)
        )
    )
    assert len({b.id for b in booked}) == 50

    # Two background loops (two bot processes) on pools of their own, at once.
    notifier = bot.resources.notifier
    pools = [await asyncpg.create_pool(tenant.database_url, min_size=1, max_size=1) for _ in "ab"]
    try:
        workers = [
            BackgroundWorker(core=BookingCore(pool, clock=clock), notifier=notifier, clock=clock)
            for pool in pools
        ]
        await asyncio.gather(*(w.tick() for w in workers))
        await asyncio.gather(*(w.tick() for w in workers))
    finally:
        for pool in pools:
            await pool.close()

    for user in (bot.owner, staff):
        told = _texts(await user.messages(), NEW)
        assert len(told) == 50, len(told)
        assert sorted(t.split("C", 1)[1][:2] for t in told if "C" in t) == [
            f"{i:02d}" for i in range(50)
        ]
    staff_note = _texts(await staff.messages(), NEW)[0]
    assert "+79160000000" not in staff_note and "…0000" in staff_note  # the phone's end only
    assert not notifier.tally.failed and not notifier.tally.retried


async def test_a_loop_that_stops_mid_delivery_sends_nothing_twice(
    start_bot: Any, tenant: Any, clock: Any
) -> None:
    bot = await start_bot(background=False)
    await say(bot.owner, "/start")
    staff = await _linked_staff(bot, tenant)
    customer = await tenant.core.customers.register(20_000, name="Boris", phone="+79160000001")
    await tenant.core.bookings.book(  # by a second owner's account, for a caller
        customer_id=customer.id,
        service_id=tenant.service_id,
        start=datetime(2030, 1, 8, 7, 0, tzinfo=UTC),
        actor=Actor.owner(20_001),
    )
    notifier = bot.resources.notifier
    settings = await tenant.core.catalogue.get_settings()
    outbox = tenant.core.notices

    # The first loop hands out and claims both notices, makes the owner's Telegram call, and dies
    # before recording it (a crash during the call); the staff member's it never started.
    assert await outbox.hand_out(owner_ids=notifier.owner_ids) == 2
    claimed = {n.role: n for n in await outbox.claim(worker="doomed")}
    assert set(claimed) == {"owner", "staff"}
    assert await outbox.start_sending(claimed["owner"])
    assert (await notifier.new_booking_notice(claimed["owner"], settings=settings)).outcome is (
        Outcome.SENT
    )
    # While the lease holds, nobody else takes them.
    survivor = BackgroundWorker(core=tenant.core, notifier=notifier, clock=clock)
    await survivor.tick()
    assert not _texts(await staff.messages(), NEW)

    clock.advance(DEFAULT_LEASE + timedelta(seconds=1))
    await survivor.tick()
    await survivor.tick()
    assert len(_texts(await bot.owner.messages(), NEW)) == 1  # never twice
    assert len(_texts(await staff.messages(), NEW)) == 1  # claimed, never started: sent once
    assert notifier.tally.failed["owner_notice"] == 1  # the interrupted one, set aside and counted
    conn = await asyncpg.connect(tenant.database_url)
    try:
        states = dict(await conn.fetch("SELECT role, state FROM booking_notices"))
    finally:
        await conn.close()
    assert states == {"owner": "failed", "staff": "sent"}
