"""Cancel frees the slot and tells the waitlist; reschedule inside and outside the rules."""

from __future__ import annotations

from datetime import date, timedelta

from tests.support.chat_helpers import book_first_slot, buttons, say, tap, wait_for_text


async def _fill_day(tenant, day_starts: list[int]) -> None:
    """Book every start of Tuesday 8 January (10:00-17:00) for other customers."""
    from datetime import UTC, datetime

    for i, hour in enumerate(day_starts):
        customer = await tenant.core.customers.register(
            900_000 + i, name=f"C{i}", phone="+79160000000"
        )
        await tenant.core.bookings.book(
            customer_id=customer.id,
            service_id=tenant.service_id,
            start=datetime(2030, 1, 8, hour - 3, 0, tzinfo=UTC),  # Moscow is UTC+3
        )


async def test_cancel_frees_slot_and_notifies_waitlist(start_bot, tenant) -> None:
    bot = await start_bot()
    anna, boris = await bot.customer("Anna"), await bot.customer("Boris")
    await say(bot.owner, "/start")
    await book_first_slot(anna, time="10:00")
    await _fill_day(tenant, list(range(11, 18)))

    # Boris finds the day full and joins its waitlist.
    await say(boris, "/book")
    await tap(boris, "Haircut · 1 h · 1\u202f500 ₽")
    assert "·8·" in await buttons(boris)
    full = await tap(boris, "·8·")
    assert "No free time" in full["text"]
    joined = await tap(boris, "🔔 Tell me if a time frees up")
    assert "waitlist" in joined["text"]

    # Anna cancels; the owner and Boris are told, and the slot is bookable again.
    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    await tap(anna, "✖ Cancel booking")
    done = await tap(anna, "Yes, cancel it")
    assert "cancelled" in done["text"]
    assert "cancelled" in (await wait_for_text(bot.owner, "Booking cancelled"))["text"]
    await wait_for_text(boris, "A time has freed up")
    free = await tenant.core.slots.free_slots(tenant.service_id, day_from=date(2030, 1, 8))
    assert len(free) == 1
    # Anna is not told about her own cancellation beyond the screen she saw.
    assert not [m for m in await anna.messages() if "freed up" in (m["text"] or "")]


async def test_reschedule_within_and_outside_the_rules(start_bot, tenant, clock) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(bot.owner, "/start")
    await book_first_slot(anna, time="10:00")

    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    await tap(anna, "🔁 Reschedule")
    await tap(anna, "9")
    await tap(anna, "15:00")
    moved = await tap(anna, "✅ Yes, move it")
    assert "Moved" in moved["text"] and "Wed 9 Jan, 15:00" in moved["text"]
    owner_note = await wait_for_text(bot.owner, "Booking moved")
    assert "Tue 8 Jan, 10:00" in owner_note["text"]

    # One hour before the start is inside the 120-minute reschedule notice: refused, time kept.
    clock.advance(timedelta(days=2, hours=5))  # Wed 9 Jan 14:00 Moscow
    await say(anna, "/my")
    await tap(anna, "Wed 9 Jan, 15:00 · Haircut")
    await tap(anna, "🔁 Reschedule")
    await tap(anna, "10")
    await tap(anna, "12:00")
    refused = await tap(anna, "✅ Yes, move it")
    assert "too late" in refused["text"].lower()
    bookings = await tenant.core.bookings.for_day(date(2030, 1, 9))
    assert [b.booking.starts_at.hour for b in bookings] == [12]  # 15:00 Moscow, unchanged
