"""Restart mid-conversation; garbage callbacks and messages; a burst engages the rate limit."""

from __future__ import annotations

import asyncio
import random
import string

from tenant_bot.callbacks import MyBooking, OwnerBooking, PickDay, PickTime
from tests.support.chat_helpers import book_first_slot, bot_view, say, settle, tap, wait_for_text


async def test_restart_mid_conversation_continues(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(anna, "8")
    await tap(anna, "10:00")  # now asked for a name
    await bot.shutdown()

    await start_bot()
    await say(anna, "Anna")  # the new process knows the conversation from Redis
    await say(anna, "+79161234567")  # "Thank you!" (the phone keyboard goes), then the summary
    await wait_for_text(anna, "check your booking")
    final = await tap(anna, "✅ Confirm")
    assert "You are booked" in final["text"]


async def test_garbage_never_crashes_and_never_leaks(start_bot, tenant, emulator) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/start")
    rng = random.Random(8)
    garbage = [
        "",
        "x",
        "s:notanumber",
        "t:1:2:3:4",
        "b:999999:cy",
        "ab:1:ok",  # an owner button pressed by a customer
        MyBooking(booking_id=424242, action="cy").pack(),
        OwnerBooking(booking_id=1, action="d").pack(),
        PickTime(ts=1, staff_id=1).pack(),
        "d:99999999:b",
        *("".join(rng.choices(string.printable, k=rng.randint(1, 64))) for _ in range(5)),
    ]
    for data in garbage:
        before = await bot_view(anna)
        query_id = _forge(emulator, anna, data)
        answer = await anna.callback_answer(query_id)
        text = answer.get("text") or ""
        assert "outdated" in text or "no longer active" in text, data
        await settle(anna, before)
    # Unexpected input in every state of the booking flow: stickers/contacts/text where buttons
    # are expected, and an old button of an earlier step.
    await say(anna, "/book")
    for step in ("Haircut · 1 h · 1\u202f500 ₽", "8", "10:00"):
        reply = await say(anna, "what?")
        assert "buttons" in reply["text"]
        target = next(
            m
            for m in reversed(await anna.messages())
            if any(b["text"] == step for r in m["inline_keyboard"] or [] for b in r)
        )
        before = await bot_view(anna)
        await anna.click(step, message_id=target["message_id"])
        await settle(anna, before)
    contact_as_name = await _contact(anna, before=await bot_view(anna))
    assert "send text" in contact_as_name["text"]
    await say(anna, "Anna")
    bad_phone = await say(anna, "call me maybe")
    assert "phone number" in bad_phone["text"]
    before = await bot_view(anna)
    query_id = _forge(emulator, anna, PickDay(day=20300108, purpose="b").pack())  # an earlier step
    assert "outdated" in (await anna.callback_answer(query_id))["text"]
    assert "outdated" in (await settle(anna, before))["text"]
    texts = [m["text"] or "" for m in await anna.messages() if m["from"] == "bot"]
    assert not any("Traceback" in t or "Exception" in t for t in texts)


async def _contact(user, *, before):
    await user.share_contact("+79161234567")
    return await settle(user, before)


def _forge(emulator, user, data: str) -> str:
    """Press a button carrying ``data`` on the bot's newest message, as a modified client could
    (the emulator's control API only presses real buttons, so this goes through its world)."""
    conv = emulator.world.conversations[(user.bot_id, user.id)]
    newest = max(conv.visible(), key=lambda m: m.message_id)
    return emulator.world._callback(conv, newest, data).id


async def test_burst_engages_rate_limit_politely_once(start_bot, tenant) -> None:
    bot = await start_bot(rate_limit=(12, 10))
    anna = await bot.customer("Anna")
    for i in range(20):
        await anna.send(f"spam {i}")
    await asyncio.sleep(1.0)
    texts = [m["text"] or "" for m in await anna.messages() if m["from"] == "bot"]
    assert sum("too fast" in t for t in texts) == 1
    assert len(texts) == 13  # 12 answers, then one polite warning, then silence
    assert bot.resources.dispatcher  # still running
    final = await book_first_slot(await bot.customer("Boris"))
    assert "You are booked" in final["text"]
