"""Issue 21: the owner runs the day from the bot — through the emulator, as people tap."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from tests.support.chat_helpers import buttons, say, tap, wait_for_text


async def test_a_forged_service_button_is_answered_as_stale_and_logged_at_info(
    start_bot, tenant, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    with caplog.at_level(logging.INFO):
        query = await anna.click(data="s:987654", forged=True)
        answer = await anna.callback_answer(query)
        await wait_for_text(anna, "That button is outdated")
    assert answer["text"] == "This button is outdated."
    stale = [r for r in caplog.records if r.getMessage() == "stale button"]
    assert stale and stale[0].levelno == logging.INFO and stale[0].exc_info is None
    assert getattr(stale[0], "entity", None) == "service"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.slow  # waits out a rate-limit window: ~8 s
async def test_owner_and_staff_tapping_fast_are_not_throttled_but_a_customer_is(
    start_bot, tenant
) -> None:
    bot = await start_bot(rate_limit=(12, 10))
    olga = await bot.customer("Olga")
    await tenant.core.catalogue.update_staff(tenant.staff_id, telegram_user_id=olga.id)
    anna = await bot.customer("Anna")

    for _ in range(25):  # an owner working quickly: every tap answered
        await say(bot.owner, "/admin")
    owner_texts = [m["text"] for m in await bot.owner.messages() if m["from"] == "bot"]
    assert len(owner_texts) == 25 and not any("too fast" in t for t in owner_texts)

    for _ in range(20):
        await say(olga, "/admin")
    olga_texts = [m["text"] for m in await olga.messages() if m["from"] == "bot"]
    assert len(olga_texts) == 20 and not any("too fast" in t for t in olga_texts)

    for _ in range(20):
        await anna.send("/start")
    told = await wait_for_text(anna, "too fast")
    await asyncio.sleep(0.5)
    anna_texts = [m["text"] for m in await anna.messages() if m["from"] == "bot"]
    assert told and sum("too fast" in t for t in anna_texts) == 1


async def test_a_late_friday_is_bookable_only_that_friday(start_bot, tenant) -> None:
    bot = await start_bot()
    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "👥 Staff & hours")
    await tap(owner, "Ivan")
    await tap(owner, "🕘 Working hours")
    await tap(owner, "📅 Hours for a date")
    screen = await tap(owner, "11")  # Friday 11 January 2030
    assert "Fri 11 Jan: 10:00-18:00 (the usual weekly hours)" in screen["text"]
    saved = await say(owner, "10-21")
    assert "Fri 11 Jan: 10:00-21:00 (set for this date)" in saved["text"]

    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(anna, "11")
    assert "20:00" in await buttons(anna)
    await tap(anna, "« Back")
    await tap(anna, "18")
    assert "20:00" not in await buttons(anna)
    assert "17:00" in await buttons(anna)

    # one tap closes the date, another gives it its weekly hours back
    await tap(owner, "⛔ Closed this date")
    assert await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 11)) == []
    await tap(owner, "↩️ Back to the weekly hours")
    slots = await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 11))
    assert len(slots) == 15  # 10:00 to 17:00 every 30 minutes, as every week


async def _booked(tenant, user, *, name: str, day: int, hour: int):
    """A booking of ``user`` (a registered customer) on ``day`` January 2030 at ``hour`` Moscow."""
    await say(user, "/start")  # a chat with the bot, so the bot can write to them
    customer = await tenant.core.customers.register(user.id, name=name, locale="en")
    return await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        staff_id=tenant.staff_id,
        start=datetime(2030, 1, day, hour - 3, tzinfo=UTC),
    )


async def test_a_two_week_vacation_over_existing_bookings(start_bot, tenant) -> None:
    bot = await start_bot()
    anna, boris, carl = [await bot.customer(n) for n in ("Anna", "Boris", "Carl")]
    first = await _booked(tenant, anna, name="Anna", day=9, hour=11)
    second = await _booked(tenant, boris, name="Boris", day=15, hour=12)
    outside = await _booked(tenant, carl, name="Carl", day=25, hour=12)

    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "⛔ Blocked time")
    await tap(owner, "🏖 Vacation or closure (several days)")
    await tap(owner, "The whole business")
    bad = await say(owner, "21.01 08.01")
    assert "could not read" in bad["text"] or "must not be before" in bad["text"]
    screen = await say(owner, "08.01 21.01 Master on vacation")
    assert "Closed Tue 8 Jan – Mon 21 Jan" in screen["text"]
    assert "Bookings inside: 2" in screen["text"]
    assert "Anna" in screen["text"] and "Boris" in screen["text"] and "Carl" not in screen["text"]

    # every day of the two weeks is closed, the days around are open
    for day in (8, 14, 21):
        assert not await tenant.core.slots.free_slots(
            tenant.service_id, day_from=date(2030, 1, day)
        )
    assert await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 22))

    # one tap cancels Anna's booking, and she is told why
    await tap(owner, "✖ Cancel, tell")
    told = await wait_for_text(anna, "cancelled by the business")
    assert "Master on vacation" in told["text"]
    assert "Bookings inside: 1" in (await owner.last_message())["text"]
    assert (await tenant.core.bookings.get(first.id)).booking.status.value == "cancelled"

    # one tap starts moving Boris's booking out of the vacation
    labels = await buttons(owner)
    move = next(label for label in labels if label.startswith("↪") and "Boris" in label)
    await tap(owner, move)
    await tap(owner, "22")
    await tap(owner, "12:00")
    moved = (await tenant.core.bookings.get(second.id)).booking
    assert moved.status.value == "confirmed" and moved.starts_at == datetime(
        2030, 1, 22, 9, tzinfo=UTC
    )
    await wait_for_text(boris, "moved")
    assert (await tenant.core.bookings.get(outside.id)).booking.starts_at.day == 25

    # the blocked-time list shows the closure as a range, with its bookings a tap away
    await say(owner, "/admin")
    await tap(owner, "⛔ Blocked time")
    assert "Tue 8 Jan – Mon 21 Jan" in (await owner.last_message())["text"]
    inside = await tap(owner, "📋 Bookings")
    assert "No bookings inside" in inside["text"]


HAIRCUT = "Haircut · 1 h · 1\u202f500 ₽"


async def _customers_at_confirm(bot, n: int, *, day: str, time: str) -> list:
    """``n`` customers each with the summary of ``day`` ``time`` on screen, Confirm not tapped."""
    customers = [await bot.customer(f"Racer{i}") for i in range(n)]

    async def prepare(i: int, user) -> None:
        await say(user, "/book")
        await tap(user, HAIRCUT)
        await tap(user, day)
        await tap(user, time)
        await say(user, f"Racer {i}")
        await say(user, f"+7916123450{i}")

    await asyncio.gather(*(prepare(i, u) for i, u in enumerate(customers)))
    return customers


async def _active_at(tenant, start: datetime) -> list:
    day = start.astimezone(UTC).date()
    schedule = await tenant.core.bookings.for_day(day)
    return [d for d in schedule if d.booking.starts_at == start and d.booking.status.active]


async def test_a_walk_in_races_customers_for_the_current_slot(start_bot, tenant, clock) -> None:
    await tenant.core.catalogue.update_settings(min_notice_minutes=0)
    clock.advance(timedelta(hours=1))  # Monday 10:00 in Moscow: the 10:00 slot is the current one
    bot = await start_bot()
    customers = await _customers_at_confirm(bot, 8, day="7", time="10:00")
    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "🚶 Walk-in now")  # tap one

    queries = await asyncio.gather(
        owner.click("Haircut"),  # tap two, at the same moment as every customer's Confirm
        *(c.click("✅ Confirm") for c in customers),
    )
    answers = await asyncio.gather(
        owner.callback_answer(queries[0]),
        *(c.callback_answer(q) for c, q in zip(customers, queries[1:], strict=True)),
    )
    won = await _active_at(tenant, datetime(2030, 1, 7, 7, tzinfo=UTC))
    assert len(won) == 1  # exactly one of nine
    owner_won = answers[0]["text"] == "✅ Booked"
    customers_won = [a for a in answers[1:] if "just taken" not in (a["text"] or "")]
    assert owner_won + len(customers_won) == 1
    if owner_won:
        assert won[0].customer_name == "Walk-in" and won[0].customer_telegram_id is None
    else:
        assert answers[0]["text"] == "Nobody is free for this service right now."
    losers = [a for a in answers[1:] if "just taken" in (a["text"] or "")]
    assert len(losers) == 8 - len(customers_won)  # every losing customer is told


async def test_owner_books_a_caller_racing_customers_and_over_the_limit(start_bot, tenant) -> None:
    bot = await start_bot()
    customers = await _customers_at_confirm(bot, 8, day="8", time="12:00")
    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "➕ New booking")
    await tap(owner, HAIRCUT)
    await tap(owner, "8")
    await tap(owner, "12:00")
    asked = await say(owner, "+7 903 555-12-34")
    assert "Send their name" in asked["text"]
    summary = await say(owner, "Vera")
    assert "Vera, +79035551234" in summary["text"] and "no chat with the bot" in summary["text"]
    assert "✅ Book and tell the customer" not in await buttons(owner)

    queries = await asyncio.gather(
        owner.click("✅ Book"), *(c.click("✅ Confirm") for c in customers)
    )
    answers = await asyncio.gather(
        owner.callback_answer(queries[0]),
        *(c.callback_answer(q) for c, q in zip(customers, queries[1:], strict=True)),
    )
    won = await _active_at(tenant, datetime(2030, 1, 8, 9, tzinfo=UTC))
    assert len(won) == 1
    owner_won = answers[0]["text"] == "✅ Booked"
    customers_won = [a for a in answers[1:] if "just taken" not in (a["text"] or "")]
    assert owner_won + len(customers_won) == 1
    if not owner_won:
        assert "just taken" in answers[0]["text"]  # the owner is told, and sees the free times
        await tap(owner, "13:00")
        await tap(owner, "✅ Book")
    vera = (await tenant.core.clients.search("Vera"))[0]
    assert vera.telegram_user_id is None and vera.phone == "+79035551234"
    booked = await tenant.core.bookings.for_customer(vera.id)
    assert len(booked) == 1
    conn = await asyncpg.connect(tenant.database_url)
    try:  # no chat, so no reminders armed
        armed = await conn.fetchval(
            "SELECT reminder_offsets FROM bookings WHERE id = $1", booked[0].booking.id
        )
    finally:
        await conn.close()
    assert armed == []

    # the same caller again, found by phone; the limit binds the owner unless overridden
    await tenant.core.catalogue.update_settings(max_active_per_customer=1)
    await say(owner, "/admin")
    await tap(owner, "➕ New booking")
    await tap(owner, HAIRCUT)
    await tap(owner, "9")
    await tap(owner, "15:00")
    summary = await say(owner, "8 903 555 12 34")
    assert "Vera" in summary["text"], [m["text"] for m in (await owner.messages())[-4:]]
    query = await owner.click("✅ Book")
    assert "maximum" in (await owner.callback_answer(query))["text"]
    for _ in range(100):  # the summary turns into "book over the limit"
        if "⚠️ Book over their limit" in await buttons(owner):
            break
        await asyncio.sleep(0.05)
    await tap(owner, "⚠️ Book over their limit")
    assert len(await tenant.core.bookings.for_customer(vera.id)) == 2


async def test_the_client_book_counts_what_happened_and_blocks_a_customer(
    start_bot, tenant
) -> None:
    from kit.formats import money
    from tenant_bot.booking import Actor

    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/start")
    core = tenant.core
    customer = await core.customers.register(anna.id, name="Anna", phone="+79161234567")
    boris = await core.customers.register(anna.id + 1, name="Boris")
    owner = Actor.owner(1)

    async def booking(customer_id: int, day: int):
        return await core.bookings.book(
            customer_id=customer_id,
            service_id=tenant.service_id,
            staff_id=tenant.staff_id,
            start=datetime(2030, 1, day, 8, tzinfo=UTC),
            actor=owner,
        )

    for day in (1, 2, 3):  # last week: came three times, missed once, cancelled twice
        await core.bookings.mark_done((await booking(customer.id, day)).id, actor=owner)
    await core.bookings.mark_no_show((await booking(customer.id, 4)).id, actor=owner)
    for day in (5, 6):
        await core.bookings.cancel((await booking(customer.id, day)).id, actor=owner)
    await booking(customer.id, 10)
    await core.bookings.mark_done((await booking(boris.id, 2)).id, actor=Actor.owner(1))

    # what the test counts from the bookings themselves
    mine = [d.booking for d in await core.bookings.for_customer(customer.id, include_past=True)]
    counts = {s: sum(b.status.value == s for b in mine) for s in ("done", "no_show", "cancelled")}
    upcoming = sum(b.status.active for b in mine)
    spent = sum((b.price for b in mine if b.status.value == "done"), start=Decimal(0))

    await say(bot.owner, "/admin")
    await tap(bot.owner, "📇 Clients")
    found = await say(bot.owner, "916 123")
    assert "1 found" in found["text"]
    card = (await tap(bot.owner, "Anna +79161234567"))["text"]
    assert f"Visits: {counts['done']} (last Thu 3 Jan)" in card
    assert f"No-shows: {counts['no_show']}" in card
    assert f"Cancellations: {counts['cancelled']}" in card
    assert f"Upcoming: {upcoming}" in card
    assert f"Spent: {money(spent, 'RUB')}" in card

    await tap(bot.owner, "📝 Notes")
    assert "likes it short" in (await say(bot.owner, "likes it short"))["text"]
    await tap(bot.owner, "📞 Phone")
    assert "does not look like a phone" in (await say(bot.owner, "12"))["text"]
    assert "+79031112233" in (await say(bot.owner, "8 903 111-22-33"))["text"]
    await tap(bot.owner, "✏️ Name")
    assert "Anna Petrova" in (await say(bot.owner, "Anna Petrova"))["text"]

    # blocked: her next booking is refused; allowed again: she books
    await tap(bot.owner, "⛔ Block from booking")
    assert "Blocked from booking" in (await bot.owner.last_message())["text"]
    await say(anna, "/book")
    await tap(anna, HAIRCUT)
    await tap(anna, "9")
    refused = await tap(anna, "11:00")
    if "✅ Confirm" in await buttons(anna):
        refused = await tap(anna, "✅ Confirm")
    assert "online booking is not available for you" in refused["text"]
    await tap(bot.owner, "✅ Allow booking again")
    await say(anna, "/book")
    await tap(anna, HAIRCUT)
    await tap(anna, "9")
    await tap(anna, "11:00")
    done = await tap(anna, "✅ Confirm")
    assert "booked" in done["text"].lower() or "confirmed" in done["text"].lower()
    assert (await core.clients.card(customer.id)).upcoming == upcoming + 1


async def test_public_holidays_closed_and_one_opened(start_bot, tenant) -> None:
    bot = await start_bot()
    core = tenant.core
    owner = bot.owner

    async def slots(day: int) -> int:
        return len(await core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, day)))

    assert await slots(8) == 15  # off: a holiday is a day like any other
    await say(owner, "/admin")
    await tap(owner, "⛔ Blocked time")
    await tap(owner, "🎌 Public holidays")
    screen = await tap(owner, "🇷🇺 Switch on: Russia")
    assert "Production calendar RU" in screen["text"]
    labels = await buttons(owner)
    assert "⛔ Tue 8 Jan · New Year Holidays" in labels
    assert any(label.startswith("⛔ Sat 23 Feb") for label in labels)
    # Christmas (today) and 8 January are closed; the 9th is an ordinary Wednesday
    assert await slots(7) == 0 and await slots(8) == 0 and await slots(9) == 15

    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, HAIRCUT)
    assert "8" not in await buttons(anna) and "9" in await buttons(anna)

    await tap(owner, "⛔ Tue 8 Jan · New Year Holidays")  # opened: the weekly hours apply
    assert "✅ Tue 8 Jan · New Year Holidays" in await buttons(owner)
    assert await slots(8) == 15 and await slots(7) == 0
    await say(anna, "/book")
    await tap(anna, HAIRCUT)
    await tap(anna, "8")
    assert "10:00" in await buttons(anna)

    await tap(owner, "✅ Tue 8 Jan · New Year Holidays")  # and closed again
    assert await slots(8) == 0
    await tap(owner, "Switch the calendar off")
    assert await slots(8) == 15

    await tap(owner, "Another country…")
    refused = await say(owner, "XX")
    assert "no public holiday calendar" in refused["text"] or "country" in refused["text"]
