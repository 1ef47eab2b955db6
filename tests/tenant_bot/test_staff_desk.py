"""Issue 21 item 1 for staff: a staff member with a Telegram account books callers and walk-ins
on their own schedule from /staff (the owner's booking steps, pinned to them), and nobody else's;
the owner's and staff's picker, and the owner's move, offer times inside the customers' minimum
notice (customers keep it)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import asyncpg

from tenant_bot.booking import WorkInterval
from tests.support.chat_helpers import buttons, say, tap, wait_for_text

HAIRCUT = "Haircut · 1 h · 1\u202f500 ₽"


async def _olga(bot, tenant) -> tuple:
    """A second staff member, Olga, linked to her Telegram account, working 10-18 daily."""
    olga = await bot.customer("Olga")
    staff = await tenant.core.catalogue.create_staff(
        name="Olga", service_ids=[tenant.service_id], telegram_user_id=olga.id
    )
    for weekday in range(7):
        await tenant.core.catalogue.set_working_hours(
            staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
        )
    return olga, staff.id


async def _history(tenant, booking_id: int) -> list[tuple[str, int | None]]:
    conn = await asyncpg.connect(tenant.database_url)
    try:
        rows = await conn.fetch(
            "SELECT actor, actor_id FROM booking_history WHERE booking_id = $1", booking_id
        )
    finally:
        await conn.close()
    return [(r["actor"], r["actor_id"]) for r in rows]


async def test_a_staff_member_books_a_caller_with_themselves(start_bot, tenant) -> None:
    bot = await start_bot()
    olga, olga_id = await _olga(bot, tenant)
    await say(bot.owner, "/admin")  # the owner has a chat with the bot, to hear of bookings
    menu = await say(olga, "/staff")
    assert "Your desk, Olga" in menu["text"]
    assert await buttons(olga) == ["📅 My day", "➕ New booking", "🚶 Walk-in now", "🏠 Menu"]
    await tap(olga, "➕ New booking")
    await tap(olga, HAIRCUT)  # no "which staff" step: Olga books with herself
    await tap(olga, "8")
    await tap(olga, "12:00")
    await say(olga, "+7 903 555-12-34")
    summary = await say(olga, "Vera")
    assert "Olga" in summary["text"] and "Vera, +79035551234" in summary["text"]
    await tap(olga, "✅ Book")
    done = await wait_for_text(olga, "Booked with you")
    assert "Vera" in done["text"] and "« Back" in await buttons(olga)

    vera = (await tenant.core.clients.search("Vera"))[0]
    [booked] = await tenant.core.bookings.for_customer(vera.id)
    assert booked.booking.staff_id == olga_id
    assert booked.booking.starts_at == datetime(2030, 1, 8, 9, tzinfo=UTC)
    assert await _history(tenant, booked.booking.id) == [("owner", olga.id)]  # who booked
    await wait_for_text(bot.owner, "Vera")  # the owner hears of the booking

    await tap(olga, "« Back")  # back to the staff menu, not the owner's
    assert "Your desk, Olga" in (await olga.last_message())["text"]


async def test_a_staff_walk_in_is_booked_with_them_even_when_another_is_free(
    start_bot, tenant, clock
) -> None:
    await tenant.core.catalogue.update_settings(min_notice_minutes=0)
    clock.advance(timedelta(hours=1))  # Monday 10:00 in Moscow
    bot = await start_bot()
    olga, olga_id = await _olga(bot, tenant)
    await say(olga, "/staff")
    await tap(olga, "🚶 Walk-in now")
    await tap(olga, "Haircut")
    await wait_for_text(olga, "Booked with you")
    [walk_in] = [
        d
        for d in await tenant.core.bookings.for_day(datetime(2030, 1, 7).date())
        if d.booking.status.active
    ]
    assert walk_in.booking.staff_id == olga_id  # Ivan was free too, and first in order
    assert walk_in.customer_name == "Walk-in"


async def test_forged_staff_buttons_are_refused_quietly(start_bot, tenant) -> None:
    bot = await start_bot()
    olga, _ = await _olga(bot, tenant)
    anna = await bot.customer("Anna")
    ivan_slot = int(datetime(2030, 1, 8, 9, tzinfo=UTC).timestamp())

    # a customer forging the staff buttons: told the button is outdated, nothing booked
    await say(anna, "/start")
    for data in ("sd:menu", "a:nb", "a:wi", f"an:w:{tenant.service_id}"):
        query = await anna.click(data=data, forged=True)
        assert (await anna.callback_answer(query))["text"] == "This button is outdated."
    assert "Your desk" not in (await say(anna, "/staff"))["text"]

    # a staff member forging a time of Ivan's, his staff button, or the owner's settings
    await say(olga, "/staff")
    await tap(olga, "➕ New booking")
    await tap(olga, HAIRCUT)
    await tap(olga, "8")
    query = await olga.click(data=f"t:{ivan_slot}:{tenant.staff_id}", forged=True)
    assert (await olga.callback_answer(query))["text"] == "This button is outdated."
    for data in (f"f:{tenant.staff_id}", "a:settings", "a:export"):
        query = await olga.click(data=data, forged=True)
        assert (await olga.callback_answer(query))["text"] == "This button is outdated."
    assert await tenant.core.bookings.for_day(datetime(2030, 1, 8).date()) == []
    assert await tenant.core.bookings.for_day(datetime(2030, 1, 7).date()) == []


async def test_a_switched_off_staff_member_has_no_desk(start_bot, tenant) -> None:
    bot = await start_bot()
    olga, olga_id = await _olga(bot, tenant)
    await tenant.core.catalogue.update_staff(olga_id, active=False)
    assert "Your desk" not in (await say(olga, "/staff"))["text"]
    query = await olga.click(data="a:nb", forged=True)
    assert (await olga.callback_answer(query))["text"] == "This button is outdated."


async def test_the_owners_picker_offers_times_inside_the_customers_notice(
    start_bot, tenant, clock
) -> None:
    await tenant.core.catalogue.update_settings(min_notice_minutes=120)
    clock.advance(timedelta(hours=1, minutes=5))  # Monday 10:05 in Moscow
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/book")
    await tap(anna, HAIRCUT)
    await tap(anna, "7")
    customer_times = await buttons(anna)
    assert "11:00" not in customer_times and "13:00" in customer_times

    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "➕ New booking")
    await tap(owner, HAIRCUT)
    await tap(owner, "7")
    owner_times = await buttons(owner)
    assert "11:00" in owner_times and "10:00" not in owner_times  # not the past
    await tap(owner, "11:00")
    await say(owner, "+7 903 555-12-34")
    await say(owner, "Vera")
    await tap(owner, "✅ Book")
    await wait_for_text(owner, "Vera")
    vera = (await tenant.core.clients.search("Vera"))[0]
    [booked] = await tenant.core.bookings.for_customer(vera.id)
    assert booked.booking.starts_at == datetime(2030, 1, 7, 8, tzinfo=UTC)


async def test_the_owners_move_offers_times_inside_the_customers_notice(
    start_bot, tenant, clock
) -> None:
    """The owner's "move booking" picker follows the owner's rules, as the owner's own booking
    picker: a day and times inside the customers' minimum notice; the customer moving the same
    booking keeps the notice rule."""
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/start")
    customer = await tenant.core.customers.register(anna.id, name="Anna", locale="en")
    await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        start=datetime(2030, 1, 8, 7, tzinfo=UTC),  # Tue 10:00 Moscow
    )
    await tenant.core.catalogue.update_settings(min_notice_minutes=480)
    clock.advance(timedelta(hours=1, minutes=5))  # Monday 10:05: nothing left today for customers

    await say(anna, "/my")
    await tap(anna, "Tue 8 Jan, 10:00 · Haircut")
    await tap(anna, "🔁 Reschedule")
    assert "7" not in await buttons(anna) and "8" in await buttons(anna)

    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "📋 Tomorrow")
    await tap(owner, "Tue 8 Jan 10:00 · Anna")
    await tap(owner, "🔁 Move to another time")
    assert "7" in await buttons(owner)
    await tap(owner, "7")
    times = await buttons(owner)
    assert "11:00" in times and "10:00" not in times  # inside the notice, not in the past
    card = await tap(owner, "11:00")
    assert "Mon 7 Jan, 11:00" in card["text"]
    await wait_for_text(anna, "Your booking was moved")
    [moved] = await tenant.core.bookings.for_customer(customer.id)
    assert moved.booking.starts_at == datetime(2030, 1, 7, 8, tzinfo=UTC)


async def test_the_owner_invites_a_staff_member_with_a_one_time_link(start_bot, tenant) -> None:
    bot = await start_bot()
    olga_staff = await tenant.core.catalogue.create_staff(
        name="Olga", service_ids=[tenant.service_id]
    )
    olga = await bot.customer("Olga")
    anna = await bot.customer("Anna")
    assert "Your desk" not in (await say(olga, "/staff"))["text"]

    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "👥 Staff & hours")
    await tap(owner, "Olga")
    screen = await tap(owner, "🔗 Invite to the staff desk")
    match = re.search(r"\?start=(j[0-9a-f]{16})", screen["text"])
    assert match is not None, screen["text"]

    # both open the link at once: exactly one becomes Olga's account
    answers = await asyncio.gather(
        say(olga, f"/start {match.group(1)}"), say(anna, f"/start {match.group(1)}")
    )
    joined = ["You are Olga in this bot now" in a["text"] for a in answers]
    assert sorted(joined) == [False, True]
    assert "used or has expired" in answers[joined.index(False)]["text"]
    winner = (olga, anna)[joined.index(True)]
    member = await tenant.core.catalogue.get_staff(olga_staff.id)
    assert member.telegram_user_id == winner.id
    assert "Your desk, Olga" in (await say(winner, "/staff"))["text"]

    # a made-up invitation links nobody
    stranger = await bot.customer("Boris")
    assert "used or has expired" in (await say(stranger, "/start j0123456789abcdef"))["text"]


async def test_a_command_instead_of_the_owners_cancel_reason_cancels_nothing(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/start")
    customer = await tenant.core.customers.register(anna.id, name="Anna", locale="en")
    booking = await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        start=datetime(2030, 1, 8, 7, tzinfo=UTC),
    )
    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "📋 Tomorrow")
    await tap(owner, "Tue 8 Jan 10:00 · Anna")
    await tap(owner, "✖ Cancel booking")
    menu = await say(owner, "/book")  # handled as /book, not taken as the reason
    assert "Haircut" in str(menu["inline_keyboard"])
    assert (await tenant.core.bookings.get(booking.id)).booking.status.active
