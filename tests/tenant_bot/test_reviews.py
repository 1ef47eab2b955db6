"""Reviews through the emulator: a visit marked "came" brings one request (never to a no-show, once
across a restart and a second bot process), stars and a comment reach the owner, who can hide the
review; the business's and staff members' ratings show on /start and the staff choice only once
there are as many reviews as the owner's threshold."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from sandbox.telegram import TelegramUser
from tenant_bot.booking import WorkInterval
from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text

ASKED = "How was your visit"
SERVICE = "Haircut · 1 h · 1\u202f500 ₽"


def _asked(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["from"] == "bot" and ASKED in (m["text"] or "")]


async def _welcome(user: TelegramUser) -> str:
    """The /start welcome (the message before the menu)."""
    await say(user, "/start")
    return str([m for m in await user.messages() if m["from"] == "bot"][-2]["text"])


async def _mark(owner: TelegramUser, label: str, button: str) -> None:
    await say(owner, "/admin")
    await tap(owner, "📋 Today")
    await tap(owner, label)
    await tap(owner, button)


@pytest.mark.slow  # waits 7 s to prove no second request: ~17 s
async def test_review_once_after_came_never_after_no_show(start_bot, tenant, clock) -> None:
    bot = await start_bot()
    second = await start_bot(receive=False)  # another process of the same tenant
    owner = bot.owner
    await say(owner, "/start")
    anna = await bot.customer("Anna")
    boris = await bot.customer("Boris")
    await book_first_slot(anna, time="10:00")
    await book_first_slot(boris, name="Boris", phone="+79161234568", time="12:00")
    await wait_for_text(owner, "Boris", timeout=30)  # the notices, sent by the background loop
    clock.advance(timedelta(days=1, hours=5))  # Tue 8 Jan 14:00 Moscow: both visits are over
    ids = {d.customer_name: d.booking.id for d in await tenant.core.completion.awaiting()}

    await _mark(owner, "Tue 8 Jan 10:00 · Anna", "✅ Came")
    await _mark(owner, "Tue 8 Jan 12:00 · Boris", "🚫 Did not come")

    request = await anna.wait_for_bot_message(lambda m: ASKED in (m["text"] or ""), timeout=60)
    for fact in ("💈 Haircut", "👤 Ivan", "🕒 Tue 8 Jan"):
        assert fact in request["text"]
    assert [b["text"] for row in request["inline_keyboard"] for b in row] == [
        f"{n} ⭐" for n in range(1, 6)
    ]

    # both processes restart: nobody is asked again, and the no-show never is
    await bot.shutdown()
    await second.shutdown()
    bot = await start_bot()
    await start_bot(receive=False)
    await asyncio.sleep(7)  # longer than a pass of both senders
    assert len(_asked(await anna.messages())) == 1
    assert _asked(await boris.messages()) == []
    assert await tenant.core.reviews.request_status(ids["Anna"]) == "sent"
    assert await tenant.core.reviews.request_status(ids["Boris"]) is None

    # stars, then a comment; the owner hears of both
    thanks = await tap(anna, "5 ⭐")
    assert thanks["text"].startswith("Thank you! ★★★★★")
    new = await wait_for_text(owner, "New review")
    assert "★★★★★" in new["text"] and "🙋 Anna" in new["text"]
    saved = await say(anna, "Great haircut, thanks")
    assert saved["text"] == "Thank you, your comment is saved."
    comment = await wait_for_text(owner, "added a comment")
    assert "Great haircut, thanks" in comment["text"]
    review = await tenant.core.reviews.get(ids["Anna"])
    assert review is not None and (review.stars, review.comment) == (5, "Great haircut, thanks")

    # the owner's threshold is 3 by default: no rating yet; 1 makes it show
    assert "out of 5" not in await _welcome(anna)
    await say(owner, "/admin")
    screen = await tap(owner, "⭐ Reviews")
    assert "★★★★★ · Anna · Ivan" in screen["text"]
    await tap(owner, "🔢 Show ratings from 3 reviews")
    await say(owner, "1")
    assert "⭐ 5.0 out of 5 · reviews: 1" in await _welcome(anna)
    olga = await tenant.core.catalogue.create_staff(name="Olga", service_ids=[tenant.service_id])
    await tenant.core.catalogue.set_working_hours(olga.id, 2, [WorkInterval.parse("10:00-18:00")])
    await say(anna, "/book")
    await tap(anna, SERVICE)
    labels = await buttons(anna)
    assert "Ivan · ⭐ 5.0 (1)" in labels and "Olga" in labels  # Olga has no reviews

    # hidden from its notice: the rating is gone
    query = await owner.click("🙈 Hide from ratings", message_id=comment["message_id"])
    answer = await owner.callback_answer(query)
    assert answer["text"].startswith("Hidden")
    assert "out of 5" not in await _welcome(anna)
