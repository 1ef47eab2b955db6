"""Owners who take their time to pay (issue 13), on a real ``botfleet up``, through public surfaces.

A real buyer types card details for longer than one reconciler pass. The reconciler used to take the
unpaid purchase (``status=new``, ``desired_state=stopped``, no instance) for drift and suspend it;
the ``tenant.suspended`` notice could not be rendered and killed the sales bot's outbox, so that owner
and every owner after them heard nothing again. Here the reconciler runs every second and the owner
pays only after several passes (once after a cancelled first attempt): every notice arrives exactly
once, the bot answers, and the next owner is told everything too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from sandbox.telegram import TelegramSandbox, TelegramUser
from tests.support.e2e_support import (
    StartPlatform,
    UpProcess,
    any_message,
    bot_id_of,
    buttons_of,
    buy_bot,
    notices_settle,
    press_cancel,
    press_pay,
    sales_bot_id,
    say,
    tap,
    text_of,
)

RECONCILE_INTERVAL_S = 1.0
PASSES_BEFORE_PAYING = 5  # "at least 3 reconciler passes", with room for a slow machine

PAID = "Payment received"
LIVE = "is live!"  # the payment notice says "we'll write as soon as it is live." (no "!")
CANCELED = "did not go through"
SUSPENDED = "is suspended"
NOTICES = [PAID, LIVE, CANCELED, SUSPENDED]


async def start(start_platform: StartPlatform) -> UpProcess:
    return await start_platform(BOTFLEET_RECONCILE_INTERVAL_S=str(RECONCILE_INTERVAL_S))


async def wait_reconciler_passes(passes: int = PASSES_BEFORE_PAYING) -> None:
    """Let the worker's reconciler look at the unpaid purchase ``passes`` times."""
    await asyncio.sleep(passes * RECONCILE_INTERVAL_S + 0.5)


def worker_story(up: UpProcess) -> str:
    """What the platform logged about reconciling, suspending and the outbox (for failures)."""
    wanted = re.compile(r"reconcil|suspend|outbox|event|Traceback|Error", re.IGNORECASE)
    stderr = (up.logs / "up.stderr").read_text(errors="replace")
    return "\n".join(line[:400] for line in stderr.splitlines() if wanted.search(line))[-6000:]


async def heard(
    owner: TelegramUser, up: UpProcess, fragment: str, *, timeout: float
) -> dict[str, Any]:
    """The owner's notice containing ``fragment``; failing, what the platform logged meanwhile."""
    try:
        return await any_message(owner, fragment, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker_story(up)}") from None


async def told_exactly_once(owner: TelegramUser, up: UpProcess, **expected: int) -> None:
    """Each notice arrived as often as expected (``paid=1, live=1, canceled=0``), also after a
    few quiet seconds in which a duplicate would show up; no suspension notice ever."""
    counts = await notices_settle(owner, NOTICES)
    wanted = {
        PAID: expected.get("paid", 0),
        LIVE: expected.get("live", 0),
        CANCELED: expected.get("canceled", 0),
        SUSPENDED: 0,
    }
    assert counts == wanted, f"notices in the owner's chat: {counts}\n{worker_story(up)}"


async def bot_answers_start(sandbox: TelegramSandbox, owner: TelegramUser, token: str) -> None:
    owner_in_bot = sandbox.as_user(bot_id=bot_id_of(token), user_id=owner.id)
    # /start answers with two messages, the welcome then the menu: wait for the last, then look
    # for the welcome among them (waiting for the welcome as the last message races the menu).
    await say(owner_in_bot, "/start", "What would you like to do?", timeout=30)
    said = [text_of(m) for m in (await owner_in_bot.chat())["messages"] if m["from"] == "bot"]
    assert any("Welcome to" in text for text in said), said


@pytest.mark.slow
async def test_owner_pays_after_several_reconciler_passes(start_platform: StartPlatform) -> None:
    up = await start(start_platform)
    banner = up.banner
    assert banner is not None and len(banner.tokens) == 3
    first_token, second_token = banner.tokens[0], banner.tokens[1]
    async with TelegramSandbox(banner.emulator_url) as sandbox:
        sales = await sales_bot_id(sandbox)

        # The first owner buys, then types card details while the reconciler passes by.
        slow = await sandbox.user(bot_id=sales, first_name="Ivan", language_code="en")
        pay_url = await buy_bot(slow, token=first_token, business="Slow Barbershop")
        await wait_reconciler_passes()
        await press_pay(pay_url)
        await heard(slow, up, PAID, timeout=30)
        live = await heard(slow, up, LIVE, timeout=90)
        assert "@demo_booking_1_bot" in text_of(live)
        await told_exactly_once(slow, up, paid=1, live=1)
        await bot_answers_start(sandbox, slow, first_token)

        # The outbox is still alive: the next owner, who pays at once, hears everything too.
        prompt = await sandbox.user(bot_id=sales, first_name="Olga", language_code="en")
        pay_url = await buy_bot(prompt, token=second_token, business="Prompt Repairs")
        await press_pay(pay_url)
        await heard(prompt, up, PAID, timeout=30)
        live = await heard(prompt, up, LIVE, timeout=90)
        assert "@demo_booking_2_bot" in text_of(live)
        await told_exactly_once(prompt, up, paid=1, live=1)
        await bot_answers_start(sandbox, prompt, second_token)

        # Nothing more reached the first owner meanwhile.
        await told_exactly_once(slow, up, paid=1, live=1)


@pytest.mark.slow
async def test_owner_pays_again_after_a_cancelled_payment(start_platform: StartPlatform) -> None:
    up = await start(start_platform)
    banner = up.banner
    assert banner is not None and banner.tokens
    token = banner.tokens[0]
    async with TelegramSandbox(banner.emulator_url) as sandbox:
        owner = await sandbox.user(
            bot_id=await sales_bot_id(sandbox), first_name="Anna", language_code="en"
        )

        # The first attempt is cancelled on the checkout page.
        pay_url = await buy_bot(owner, token=token, business="Anna's Clinic")
        await press_cancel(pay_url)
        await heard(owner, up, CANCELED, timeout=30)
        await told_exactly_once(owner, up, canceled=1)

        # The owner comes back later (the reconciler passed by meanwhile) and pays from "My bots".
        await wait_reconciler_passes()
        await say(owner, "/mybots", "Your bots")
        await tap(owner, "awaiting payment", pick=lambda t: t.startswith("@demo_booking_1_bot"))
        again = await tap(owner, "Press the button to pay", text="💳 Pay")
        [second_url] = [b["url"] for b in buttons_of(again) if b.get("url")]
        assert second_url != pay_url
        await press_pay(second_url)
        await heard(owner, up, PAID, timeout=30)
        live = await heard(owner, up, LIVE, timeout=90)
        assert "@demo_booking_1_bot" in text_of(live)
        await told_exactly_once(owner, up, paid=1, live=1, canceled=1)
        await bot_answers_start(sandbox, owner, token)
