"""Reminders that ask and no-show memory (issue 19, items 3 and 4), through the Telegram emulator:
a reminder with "I'll come" / "Cancel" / "Reschedule" sent exactly once (two processes, a sender that
died after claiming, a restart), "I'll come" recorded once and shown to the owner, a cancellation
from the reminder, an unconfirmed booking released to the waitlist, the owner's settings refusing
bad input, and a repeat no-show blocked politely with the count on the owner's card."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from tenant_bot.booking import Actor, BookingStatus
from tenant_bot.callbacks import Attend, MyBooking, Setting
from tests.support.chat_helpers import book_first_slot, bot_view, buttons, say, settle, tap

TUE = date(2030, 1, 8)
REMINDER = "Reminder: you are booked"
REMINDER_BUTTONS = ["👍 I'll come", "✖ Cancel", "🔁 Reschedule", "🗂 My bookings"]


async def _wake(*bots) -> None:
    for _ in range(2):
        for bot in bots:
            bot.resources.background.wake.set()
        await asyncio.sleep(0.3)


async def _reminders(user) -> list[dict]:
    return [m for m in await user.messages() if REMINDER in (m["text"] or "")]


def _labels(message: dict) -> list[str]:
    return [b["text"] for row in message["inline_keyboard"] or [] for b in row]


def _forge(emulator, user, data: str) -> str:
    """Press a button carrying ``data`` on the bot's newest message, as a modified client could."""
    conv = emulator.world.conversations[(user.bot_id, user.id)]
    newest = max(conv.visible(), key=lambda m: m.message_id)
    return emulator.world._callback(conv, newest, data).id


async def _booking(tenant, day: date = TUE):
    [details] = await tenant.core.bookings.for_day(day)
    return details


@pytest.mark.slow  # a dead sender's lease expires, then a restart: ~8 s
async def test_reminder_with_buttons_sent_exactly_once_across_a_dead_sender_and_a_restart(
    start_bot, tenant, clock
) -> None:
    main = await start_bot()
    second = await start_bot(receive=False)  # a second process of the tenant: background only
    anna = await main.customer("Anna")
    await book_first_slot(anna, time="10:00")  # Tue 8 Jan 10:00 Moscow: reminders 24 h and 2 h
    await main.shutdown()

    # Mon 10:01: the 24 h reminder is due. A process claims it and dies before sending.
    clock.advance(timedelta(hours=1, minutes=1))
    [claimed] = await tenant.core.reminders.claim_due(worker="dying", lease=timedelta(minutes=5))
    main = await start_bot()  # the restart
    await _wake(main, second)
    assert await _reminders(anna) == []  # still leased to the dead process
    clock.advance(timedelta(minutes=6))  # the lease ran out
    for _ in range(3):
        await _wake(main, second)
    [reminder] = await _reminders(anna)
    assert "Tue 8 Jan, 10:00" in reminder["text"] and "Will you come?" in reminder["text"]
    assert _labels(reminder) == REMINDER_BUTTONS
    assert not await tenant.core.reminders.mark_sent(claimed.id, claimed.claim_token)

    await main.shutdown()  # and once more: nothing is sent again after a restart
    main = await start_bot()
    await _wake(main, second)
    assert len(await _reminders(anna)) == 1

    clock.advance(timedelta(hours=22))  # Tue 08:07: the 2 h reminder, once, by either process
    for _ in range(3):
        await _wake(second, main)
    assert len(await _reminders(anna)) == 2
    assert main.resources.notifier.tally.snapshot()["failed"] == {}


async def test_ill_come_recorded_once_shown_to_the_owner_and_forgeries_ignored(
    start_bot, tenant, clock, emulator
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    boris = await bot.customer("Boris")
    await say(boris, "/start")
    await book_first_slot(anna, time="10:00")
    booking_id = (await _booking(tenant)).booking.id
    clock.advance(timedelta(hours=1, minutes=1))
    await _wake(bot)
    assert len(await _reminders(anna)) == 1

    # Boris forges Anna's "I'll come": answered quietly, nothing recorded, his chat unchanged
    before = await bot_view(boris)
    answer = await boris.callback_answer(
        _forge(emulator, boris, Attend(booking_id=booking_id).pack())
    )
    assert "no longer active" in answer["text"] and not answer.get("show_alert")
    await asyncio.sleep(0.2)
    assert await bot_view(boris) == before
    assert (await _booking(tenant)).booking.customer_confirmed_at is None

    confirmed_at = clock.now
    screen = await tap(anna, "👍 I'll come")
    assert "we are expecting you" in screen["text"] and "Tue 8 Jan, 10:00" in screen["text"]
    assert _labels(screen) == REMINDER_BUTTONS[1:]  # no second "I'll come"
    clock.advance(timedelta(minutes=5))
    replay = await anna.callback_answer(
        _forge(emulator, anna, Attend(booking_id=booking_id).pack())
    )
    assert "Thank you" in replay["text"]
    details = await _booking(tenant)
    assert details.booking.customer_confirmed_at == confirmed_at  # the first tap's time
    history = await tenant.core.bookings.history(booking_id)
    assert [h.reason for h in history].count("confirmed they will come") == 1

    await say(bot.owner, "/admin")
    day = await tap(bot.owner, "📋 Tomorrow")
    [line] = [x for x in day["text"].splitlines() if "10:00 · Haircut · Ivan · Anna" in x]
    assert line.endswith(" · 👍 will come")
    card = await tap(bot.owner, "Tue 8 Jan 10:00 · Anna")
    assert "The customer confirmed they will come." in card["text"]


async def test_cancel_from_the_reminder(start_bot, tenant, clock, emulator) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")
    clock.advance(timedelta(hours=1, minutes=1))
    await _wake(bot)
    await _reminders(anna)
    asked = await tap(anna, "✖ Cancel")
    assert "Cancel this booking?" in asked["text"]
    done = await tap(anna, "Yes, cancel it")
    assert "cancelled" in done["text"].lower()
    assert (await _booking(tenant)).booking.status is BookingStatus.CANCELLED
    owner_texts = [m["text"] or "" for m in await bot.owner.messages()]
    assert any(t.startswith("❌ Booking cancelled") for t in owner_texts)
    # the reminder became the menu; its buttons replayed are stale: answered, nothing changes
    booking_id = (await _booking(tenant)).booking.id
    for data in (
        MyBooking(booking_id=booking_id, action="r").pack(),
        Attend(booking_id=booking_id).pack(),
    ):
        stale = await anna.callback_answer(_forge(emulator, anna, data))
        assert "no longer active" in stale["text"]
    assert (await _booking(tenant)).booking.status is BookingStatus.CANCELLED


async def test_unconfirmed_booking_released_and_offered_to_the_waitlist(
    start_bot, tenant, clock
) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    await tenant.core.catalogue.update_settings(release_unconfirmed_hours=3)
    anna = await bot.customer("Anna")
    boris = await bot.customer("Boris")
    await say(boris, "/start")
    await book_first_slot(anna, time="10:00")
    boris_customer = await tenant.core.customers.register(boris.id, name="Boris", locale="en")
    await tenant.core.waitlist.join(
        customer_id=boris_customer.id, service_id=tenant.service_id, day=TUE
    )
    clock.advance(timedelta(hours=1, minutes=1))  # Mon 10:01: the 24 h reminder
    await _wake(bot)
    assert len(await _reminders(anna)) == 1
    clock.now = datetime(2030, 1, 8, 3, 59, tzinfo=UTC)  # Tue 06:59: not yet 3 h before
    await _wake(bot)
    assert (await _booking(tenant)).booking.status.active
    clock.now = datetime(2030, 1, 8, 4, 1, tzinfo=UTC)  # Tue 07:01
    await _wake(bot)
    released = await _last_with(anna, "was released")
    assert "Tue 8 Jan, 10:00" in released["text"]
    assert (await _last_with(boris, "A time has freed up"))["text"]
    details = await _booking(tenant)
    assert details.booking.status is BookingStatus.CANCELLED
    assert details.booking.cancelled_by == "system"
    owner = await _last_with(bot.owner, "Booking cancelled")
    assert "did not confirm" in owner["text"]
    await _wake(bot)  # once
    assert sum("was released" in (m["text"] or "") for m in await anna.messages()) == 1
    # the released booking's "I'll come" is answered, and does not bring it back
    answer = await anna.callback_answer(
        await anna.click("👍 I'll come", message_id=(await _reminders(anna))[0]["message_id"])
    )
    assert "no longer active" in answer["text"]
    assert (await _booking(tenant)).booking.status is BookingStatus.CANCELLED


async def _last_with(user, needle: str, timeout: float = 5.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for message in reversed(await user.messages()):
            if needle in (message["text"] or ""):
                return message
        if loop.time() > deadline:
            raise TimeoutError(needle)
        await asyncio.sleep(0.05)


async def test_owner_settings_refuse_bad_input_and_rearm(
    start_bot, tenant, clock, emulator
) -> None:
    bot = await start_bot()
    owner = bot.owner
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")
    await say(owner, "/admin")
    await tap(owner, "⚙️ Settings")
    await tap(owner, "⏰ Reminders")
    assert "“2x” is not a reminder time" in (await say(owner, "24h, 2x"))["text"]
    assert "at most 5" in (await say(owner, "1h 2h 3h 4h 5h 6h"))["text"]
    assert "at most 5" in (await say(owner, "0"))["text"]
    await say(owner, "24h, 3h")
    await tap(owner, "⏳ Release unconfirmed bookings")
    refused = await say(owner, "30")
    assert "fewer than 24 hours" in refused["text"]
    assert "whole hours" in (await say(owner, "soon"))["text"]
    saved = await say(owner, "2")
    assert "Release unconfirmed bookings: 2 h before the start" in saved["text"]
    await tap(owner, "⏰ Reminders")
    assert "fewer than 1 hours" in (await say(owner, "1h"))["text"]  # would come after the release
    await say(owner, "5h")
    await tap(owner, "🚫 No-shows that count as repeated")
    assert "1 to 100" in (await say(owner, "0"))["text"]
    await say(owner, "2")
    screen = await tap(owner, "🚫 Repeat no-shows: change what happens")
    assert "Customers with 2+ no-shows: a deposit is required" in screen["text"]
    # a double tap (the first button replayed) sets the same again, it does not step on
    await owner.callback_answer(_forge(emulator, owner, Setting(name="noshow_deposit").pack()))
    assert (await tenant.core.catalogue.get_settings()).no_show_action == "deposit"
    screen = await tap(owner, "🚫 Repeat no-shows: change what happens")
    assert "Customers with 2+ no-shows: they cannot book" in screen["text"]
    settings = await tenant.core.catalogue.get_settings()
    assert settings.reminder_offsets_minutes == (300,)
    assert (settings.release_unconfirmed_hours, settings.no_show_action) == (2, "block")

    # Anna's booking follows the new offsets: one reminder, 5 h before (Tue 05:00 Moscow)
    clock.now = datetime(2030, 1, 8, 1, 55, tzinfo=UTC)
    await _wake(bot)
    assert await _reminders(anna) == []
    clock.now = datetime(2030, 1, 8, 2, 1, tzinfo=UTC)
    await _wake(bot)
    assert len(await _reminders(anna)) == 1


async def test_repeat_no_show_blocked_politely_and_counted_on_the_card(
    start_bot, tenant, clock
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await book_first_slot(anna, time="10:00")  # Tue 10:00
    customer = await tenant.core.customers.by_telegram_id(anna.id)
    assert customer is not None
    second = await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        start=datetime(2030, 1, 8, 9, 0, tzinfo=UTC),  # Tue 12:00
        actor=Actor.owner(),
    )
    first = await _first_of(tenant)
    await tenant.core.bookings.confirm(first, actor=Actor.owner())
    clock.now = datetime(2030, 1, 8, 10, 0, tzinfo=UTC)  # Tue 13:00: both are over
    await say(bot.owner, "/start")
    await say(bot.owner, "/admin")
    await tap(bot.owner, "📋 Today")
    card = await tap(bot.owner, "Tue 8 Jan 10:00 · Anna")
    assert "No-shows" not in card["text"]
    card = await tap(bot.owner, "🚫 Did not come")
    assert "No-shows of this customer: 1" in card["text"]
    await tenant.core.bookings.mark_no_show(second.id, actor=Actor.owner())

    await tenant.core.catalogue.update_settings(no_show_action="block", no_show_threshold=2)
    refused = await say(anna, "/book")
    assert "online booking is not available for you" in refused["text"]
    assert "contact us" in refused["text"]
    assert "Haircut" not in str(await buttons(anna))
    boris = await bot.customer("Boris")
    booked = await book_first_slot(boris, name="Boris", time="15:00")
    assert "You are booked" in booked["text"]

    # a draft started before the owner turned the rule on is refused at the last step too
    owner_side = bot.resources.core.catalogue  # the owner's menu of this bot process
    await owner_side.update_settings(no_show_action="off")
    await say(anna, "/book")
    await tap(anna, "Haircut · 1 h · 1\u202f500 ₽")
    await tap(anna, "8")
    await tap(anna, "16:00")
    await owner_side.update_settings(no_show_action="block")
    before = await bot_view(anna)
    await anna.click("✅ Confirm")
    final = await settle(anna, before)
    assert "online booking is not available for you" in final["text"]
    assert len(await tenant.core.bookings.for_customer(customer.id)) == 0

    card = await _owner_card_of(bot, tenant, second.id)
    assert "No-shows of this customer: 2" in card["text"]


async def _first_of(tenant) -> int:
    [details, *_] = await tenant.core.bookings.for_day(TUE)
    return details.booking.id


async def _owner_card_of(bot, tenant, booking_id: int) -> dict:
    from tenant_bot.callbacks import OwnerBooking

    await say(bot.owner, "/admin")
    await tap(bot.owner, "📋 Today")
    before = await bot_view(bot.owner)
    await bot.owner.click(data=OwnerBooking(booking_id=booking_id).pack())
    return await settle(bot.owner, before)
