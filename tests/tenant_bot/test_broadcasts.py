"""Mailings through the emulator, with Telegram's flood limits on.

The owner writes a mailing, picks the audience, sees the preview and the count, confirms; 500
customers are reached within Telegram's limits (no 429 from the mailing, never faster than 30
messages a second), while the bot that sends it stops half-way, a second process of the tenant takes
over and the first comes back: each customer gets it exactly once, those who blocked the bot are
counted, the one who opted out gets nothing, and the owner sees progress and the final report.
A customer unsubscribes in one tap and is left out of the next mailing's audience.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from tests.support.chat_helpers import say, tap

CUSTOMERS = 500
TEXT = "Spring offer: 20% off every haircut this week!"
TELEGRAM_PER_BOT_PER_SECOND = 30


class FloodWatch:
    """Counts the emulator's flood-limit checks of one bot: every message it let through (with its
    time) and every 429 it answered."""

    def __init__(self, emulator: TelegramEmulator, bot_id: int) -> None:
        self.passed: list[float] = []
        self.refused = 0
        limiter = emulator.world.limiter
        original = limiter.hit

        def hit(checked_bot: int, chat_id: int) -> None:
            try:
                original(checked_bot, chat_id)
            except Exception:
                if checked_bot == bot_id:
                    self.refused += 1
                raise
            if checked_bot == bot_id:
                self.passed.append(time.monotonic())

        limiter.hit = hit  # type: ignore[method-assign]

    def busiest_second(self) -> int:
        times = sorted(self.passed)
        best, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


async def _customers(
    tenant: Any, emulator: TelegramEmulator, sandbox: TelegramSandbox, bot_id: int
) -> list[int]:
    """Customers who once wrote to the bot (so it may write to them) and are in its database."""
    created = []
    for chunk in range(0, CUSTOMERS, 50):
        created += await asyncio.gather(
            *(sandbox.create_user(f"C{i}", language_code="en") for i in range(chunk, chunk + 50))
        )
    world = emulator.world
    ids = [user["id"] for user in created]
    for user_id in ids:
        world.conversation(world.bot(bot_id), world.user(user_id)).started = True
        await tenant.core.customers.register(user_id, name=f"C{user_id}", locale="en")
    return ids


def _received(emulator: TelegramEmulator, bot_id: int, user_id: int) -> int:
    conv = emulator.world.conversations.get((bot_id, user_id))
    if conv is None:
        return 0
    return sum(1 for m in conv.visible() if m.from_bot and m.text == TEXT)


async def _settled(tenant: Any, mailing_id: int, at_least: int, *, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (counts := await tenant.core.broadcasts.counts(mailing_id)).settled < at_least:
        assert loop.time() < deadline, f"only {counts.settled} of {at_least} settled"
        await asyncio.sleep(0.2)
    return counts.settled


@pytest.mark.slow  # 500 messages at Telegram's 30/s, a restart mid-way: ~30 s
async def test_mailing_to_500_within_limits_across_restart_and_two_processes(
    start_bot, tenant, emulator, sandbox
) -> None:
    bot = await start_bot()
    owner = bot.owner
    ids = await _customers(tenant, emulator, sandbox, bot.bot_id)
    blocked = ids[:2]
    for user_id in blocked:
        await sandbox.as_user(bot_id=bot.bot_id, user_id=user_id).block()
    opted_out = ids[2]
    assert await tenant.core.broadcasts.opt_out(opted_out)

    await say(owner, "/admin")
    await tap(owner, "📣 Mailings")
    await tap(owner, "✉️ New mailing")
    await say(owner, TEXT)
    confirm = await tap(owner, "👥 All customers")
    assert "Audience: all customers" in confirm["text"]
    assert "Recipients: 499" in confirm["text"]
    messages = [m for m in await owner.messages() if m["from"] == "bot"]
    preview = messages[-2]
    assert preview["text"] == TEXT  # the owner sees it as customers will, with the button
    assert preview["inline_keyboard"][0][0]["text"] == "🔕 Unsubscribe from mailings"

    await sandbox.set_rate_limits(enabled=True)  # Telegram's: 30/s per bot, 1/s per chat
    watch = FloodWatch(emulator, bot.bot_id)
    started = time.monotonic()
    progress = await tap(owner, "📣 Send to 499")
    assert progress["text"].startswith("📣 Sending the mailing (all customers)")
    mailing = (await tenant.core.broadcasts.recent(limit=1))[0][0]

    await _settled(tenant, mailing.id, 150, timeout=60)
    second = await start_bot(receive=False)  # another process of the tenant
    await bot.shutdown()  # the sender stops half-way
    halted = (await tenant.core.broadcasts.counts(mailing.id)).settled
    assert 150 <= halted < 499
    await _settled(tenant, mailing.id, halted + 50, timeout=60)  # the second took over
    await start_bot()  # and the first comes back: two processes, one sender
    report = await owner.wait_for_bot_message(
        lambda m: "Mailing finished" in (m["text"] or ""), timeout=90
    )
    elapsed = time.monotonic() - started
    assert "Sent: 497 of 499" in report["text"]
    assert "Blocked the bot: 2" in report["text"]
    assert "Failed: 0" in report["text"]

    # exactly once each; nothing to those who blocked the bot or opted out
    for user_id in ids:
        expected = 0 if user_id in (*blocked, opted_out) else 1
        assert _received(emulator, bot.bot_id, user_id) == expected, user_id
    assert watch.refused == 0
    assert watch.busiest_second() <= TELEGRAM_PER_BOT_PER_SECOND
    assert elapsed >= 497 / TELEGRAM_PER_BOT_PER_SECOND
    counts = await tenant.core.broadcasts.counts(mailing.id)
    assert (counts.sent, counts.blocked, counts.failed, counts.skipped) == (497, 2, 0, 0)
    await second.shutdown()

    # one tap to unsubscribe: left out of the next audience
    customer = sandbox.as_user(bot_id=bot.bot_id, user_id=ids[10])
    query = await customer.click("🔕 Unsubscribe from mailings")
    answer = await customer.callback_answer(query)
    assert answer["text"] == "Done: you will not receive mailings any more."
    assert await tenant.core.broadcasts.opted_out(ids[10])
    choice = tenant.core.broadcasts.audience("all")
    assert await tenant.core.broadcasts.count(choice) == CUSTOMERS - 2
