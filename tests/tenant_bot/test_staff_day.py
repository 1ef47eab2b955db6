"""Issue 21 follow-ups: a staff member runs their own day from /staff — sees their bookings day by
day, marks came / did not come, cancels with a reason — and never anyone else's; /staff is in the
command menu of linked staff members only, in their language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from sandbox.telegram import TelegramUser
from tenant_bot.booking import WorkInterval
from tenant_bot.booking.models import Actor, BookingStatus
from tests.support.chat_helpers import buttons, say, tap, wait_for_text


async def _olga(bot, tenant, **user: Any) -> tuple[TelegramUser, int]:
    """A second staff member, Olga, linked to her Telegram account, working 10-18 daily."""
    olga = await bot.customer("Olga", **user)
    staff = await tenant.core.catalogue.create_staff(
        name="Olga", service_ids=[tenant.service_id], telegram_user_id=olga.id
    )
    for weekday in range(7):
        await tenant.core.catalogue.set_working_hours(
            staff.id, weekday, [WorkInterval.parse("10:00-18:00")]
        )
    return olga, staff.id


async def _booked(
    tenant, user: TelegramUser, *, name: str, staff_id: int, day: int, hour: int
) -> int:
    """``user``'s booking with ``staff_id`` on ``day`` January 2030 at ``hour`` Moscow time."""
    await say(user, "/start")  # a chat with the bot, so the bot can tell them of a cancellation
    customer = await tenant.core.customers.register(
        user.id, name=name, phone="+7 916 123-45-67", locale="en"
    )
    booking = await tenant.core.bookings.book(
        customer_id=customer.id,
        service_id=tenant.service_id,
        staff_id=staff_id,
        start=datetime(2030, 1, day, hour - 3, tzinfo=UTC),
    )
    return booking.id


async def _history(tenant, booking_id: int) -> list[tuple[str, int | None]]:
    conn = await asyncpg.connect(tenant.database_url)
    try:
        rows = await conn.fetch(
            "SELECT actor, actor_id FROM booking_history WHERE booking_id = $1 ORDER BY id",
            booking_id,
        )
    finally:
        await conn.close()
    return [(r["actor"], r["actor_id"]) for r in rows]


async def _status(tenant, booking_id: int) -> BookingStatus:
    return (await tenant.core.bookings.get(booking_id)).booking.status


async def test_a_staff_member_sees_only_their_own_day_and_moves_by_day(start_bot, tenant) -> None:
    bot = await start_bot()
    olga, olga_id = await _olga(bot, tenant)
    vera, boris, anna = [await bot.customer(n) for n in ("Vera", "Boris", "Anna")]
    await _booked(tenant, vera, name="Vera", staff_id=olga_id, day=7, hour=12)
    await _booked(tenant, boris, name="Boris", staff_id=tenant.staff_id, day=7, hour=11)  # Ivan's
    await _booked(tenant, anna, name="Anna", staff_id=olga_id, day=8, hour=15)

    await say(olga, "/staff")
    day = await tap(olga, "📅 My day")
    assert "Mon 7 Jan: 1 booking" in day["text"]
    assert "12:00 · Haircut · Vera (confirmed)" in day["text"]
    assert "Boris" not in day["text"] and "Ivan" not in day["text"]
    assert await buttons(olga) == ["Mon 7 Jan 12:00 · Vera", "◀", "🗓 Date", "▶", "« Back"]

    tomorrow = await tap(olga, "▶")
    assert "Tue 8 Jan: 1 booking" in tomorrow["text"] and "15:00" in tomorrow["text"]
    assert "Anna" in tomorrow["text"] and "Vera" not in tomorrow["text"]
    yesterday = await tap(olga, "◀")
    await tap(olga, "◀")
    assert "Vera" in yesterday["text"]
    assert "Sun 6 Jan: 0 bookings" in (await olga.last_message())["text"]

    calendar = await tap(olga, "🗓 Date")
    assert "Choose a date" in calendar["text"]
    picked = await tap(olga, "8")
    assert "Tue 8 Jan: 1 booking" in picked["text"] and "Anna" in picked["text"]

    await tap(olga, "« Back")
    assert "Your desk, Olga" in (await olga.last_message())["text"]


async def test_a_staff_member_marks_came_and_cancels_with_a_reason(
    start_bot, tenant, clock
) -> None:
    bot = await start_bot()
    olga, olga_id = await _olga(bot, tenant)
    vera, anna = await bot.customer("Vera"), await bot.customer("Anna")
    morning = await _booked(tenant, vera, name="Vera", staff_id=olga_id, day=7, hour=10)
    later = await _booked(tenant, anna, name="Anna", staff_id=olga_id, day=7, hour=14)
    await say(bot.owner, "/admin")  # the owner has a chat with the bot, to hear of it

    await say(olga, "/staff")
    await tap(olga, "📅 My day")
    card = await tap(olga, "Mon 7 Jan 10:00 · Vera")
    assert "Your booking" in card["text"] and "Haircut" in card["text"]
    assert "Vera, phone …4567" in card["text"]
    assert "+79161234567" not in card["text"] and "916" not in card["text"]
    # not started yet: no "came"; no confirming or moving at the desk
    assert await buttons(olga) == ["✖ Cancel booking", "« Back"]
    query = await olga.click(data=f"sb:{morning}:d", forged=True)
    assert "cannot be changed" in (await olga.callback_answer(query))["text"]  # not started
    assert await _status(tenant, morning) is BookingStatus.CONFIRMED

    clock.advance(timedelta(hours=1, minutes=5))  # 10:05, the visit has started
    await tap(olga, "« Back")
    await tap(olga, "Mon 7 Jan 10:00 · Vera")
    assert await buttons(olga) == ["✖ Cancel booking", "✅ Came", "🚫 Did not come", "« Back"]
    done = await tap(olga, "✅ Came")
    assert "done" in done["text"]
    assert await _status(tenant, morning) is BookingStatus.DONE
    assert (await _history(tenant, morning))[-1] == ("owner", olga.id)  # who marked it

    await tap(olga, "« Back")
    await tap(olga, "Mon 7 Jan 14:00 · Anna")
    prompt = await tap(olga, "✖ Cancel booking")
    assert "reason" in prompt["text"]
    await say(olga, "/my")  # a command is not the reason: the step ends, nothing is cancelled
    await say(olga, "hello")
    assert await _status(tenant, later) is BookingStatus.CONFIRMED

    await say(olga, "/staff")
    await tap(olga, "📅 My day")
    await tap(olga, "Mon 7 Jan 14:00 · Anna")
    await tap(olga, "✖ Cancel booking")
    await say(olga, "Olga is ill today")
    told = await wait_for_text(anna, "cancelled by the business")
    assert "Olga is ill today" in told["text"]
    cancelled = await tenant.core.bookings.get(later)
    assert cancelled.booking.status is BookingStatus.CANCELLED
    assert cancelled.booking.cancel_reason == "Olga is ill today"
    assert "cancelled" in (await olga.last_message())["text"]
    await wait_for_text(bot.owner, "Booking cancelled: Olga is ill today")  # the owner hears


async def test_another_members_booking_is_refused_and_left_alone(start_bot, tenant, clock) -> None:
    """Forged desk buttons for Ivan's booking (and the owner's card buttons): the stale answer,
    nothing shown, nothing changed, nobody told."""
    bot = await start_bot()
    olga, olga_id = await _olga(bot, tenant)
    boris, vera = await bot.customer("Boris"), await bot.customer("Vera")
    ivans = await _booked(tenant, boris, name="Boris", staff_id=tenant.staff_id, day=7, hour=11)
    hers = await _booked(tenant, vera, name="Vera", staff_id=olga_id, day=7, hour=15)
    clock.advance(timedelta(hours=3))  # noon: Ivan's 11:00 visit has started
    boris_messages = len(await boris.messages())

    await say(olga, "/staff")
    for data in (
        f"sb:{ivans}:v",
        f"sb:{ivans}:d",
        f"sb:{ivans}:n",
        f"sb:{ivans}:x",
        f"ab:{ivans}:x",  # the owner's card
        f"ab:{ivans}:n",
        f"ab:{ivans}:m",
        "a:today",  # the owner's day
        "a:staff",
    ):
        query = await olga.click(data=data, forged=True)
        assert (await olga.callback_answer(query))["text"] == "This button is outdated.", data
    assert "Boris" not in str(await olga.messages())
    assert await _status(tenant, ivans) is BookingStatus.CONFIRMED
    assert await _history(tenant, ivans) == [("customer", None)]

    # her own cancel asked, then the booking is forged to Ivan's while she types: refused too
    await tap(olga, "📅 My day")
    await tap(olga, "Mon 7 Jan 15:00 · Vera")
    await tap(olga, "✖ Cancel booking")
    query = await olga.click(data=f"sb:{ivans}:x", forged=True)
    await olga.callback_answer(query)
    await say(olga, "-")  # the reason goes to her own booking, the one she asked about
    assert await _status(tenant, hers) is BookingStatus.CANCELLED
    assert await _status(tenant, ivans) is BookingStatus.CONFIRMED
    assert len(await boris.messages()) == boris_messages

    # the owner moves her booking to Ivan while she types the reason: refused, left alone
    carl = await bot.customer("Carl")
    moved = await _booked(tenant, carl, name="Carl", staff_id=olga_id, day=7, hour=16)
    await say(olga, "/staff")
    await tap(olga, "📅 My day")
    await tap(olga, "Mon 7 Jan 16:00 · Carl")
    await tap(olga, "✖ Cancel booking")
    await tenant.core.bookings.reschedule(
        moved,
        new_start=datetime(2030, 1, 7, 13, tzinfo=UTC),
        new_staff_id=tenant.staff_id,
        actor=Actor.owner(),
    )
    refused = await say(olga, "Olga is ill")
    assert "no longer exists" in refused["text"]
    assert await _status(tenant, moved) is BookingStatus.CONFIRMED

    # a customer forging a desk button: the same stale answer
    query = await boris.click(data=f"sb:{hers}:v", forged=True)
    assert (await boris.callback_answer(query))["text"] == "This button is outdated."


async def _menu(bot, chat_id: int) -> list[dict[str, Any]] | None:
    """The command list published for ``chat_id``'s own scope (no language), if any."""
    for entry in (await bot.sandbox.bot(bot.bot_id))["commands"]:
        scope = entry["scope"]
        mine = scope.get("type") == "chat" and scope.get("chat_id") == chat_id
        if mine and not entry["language_code"]:
            return entry["commands"]
    return None


async def test_staff_get_the_staff_command_menu_in_their_language_until_unlinked(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    member = await tenant.core.catalogue.create_staff(name="Olga", service_ids=[tenant.service_id])
    olga = await bot.customer("Olga", language_code="ru")
    anna = await bot.customer("Anna")
    assert await _menu(bot, olga.id) is None

    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "👥 Staff & hours")
    await tap(owner, "Olga")
    screen = await tap(owner, "🔗 Invite to the staff desk")
    payload = screen["text"].split("?start=")[1].split()[0]
    await say(olga, f"/start {payload}")
    menu = await _menu(bot, olga.id)
    assert menu is not None
    assert menu[0] == {"command": "staff", "description": "Рабочее место: мой день, новая запись"}
    assert [c["command"] for c in menu] == ["staff", "start", "book", "my", "language", "help"]
    assert await _menu(bot, anna.id) is None  # customers keep the customers' menu

    # she picks English in the bot: her menu follows
    await say(olga, "/language")
    await tap(olga, "🇬🇧 English")
    menu = await _menu(bot, olga.id)
    assert menu is not None and menu[0]["description"] == "Staff desk: my day, new booking"

    # switched off: no menu; on again: back
    card = await tap(owner, "« Back")  # the card again, now of a linked member
    assert "Telegram account linked" in card["text"]
    await tap(owner, "⏸ Switch off")
    assert await _menu(bot, olga.id) is None
    await tap(owner, "▶️ Switch on")
    menu = await _menu(bot, olga.id)
    assert menu is not None and menu[0]["command"] == "staff"

    # unlinked: no menu and no desk; her bookings' staff member stays
    await tap(owner, "🔓 Unlink the Telegram account")
    assert await _menu(bot, olga.id) is None
    assert (await tenant.core.catalogue.get_staff(member.id)).telegram_user_id is None
    assert "Your desk" not in (await say(olga, "/staff"))["text"]
    assert "🔓 Unlink the Telegram account" not in await buttons(owner)


async def test_a_new_account_takes_the_desk_and_its_menu_from_the_old_one(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    old_phone, olga_id = await _olga(bot, tenant)
    new_phone = await bot.customer("Olga (new phone)")
    payload = await bot.resources.dispatcher["invites"].create(olga_id)
    await say(old_phone, "/staff")  # the old account had the desk
    await say(new_phone, f"/start {payload}")
    assert await _menu(bot, new_phone.id) is not None
    assert await _menu(bot, old_phone.id) is None
    assert "Your desk" not in (await say(old_phone, "/staff"))["text"]
    assert "Your desk, Olga" in (await say(new_phone, "/staff"))["text"]

    # one account is one member: linking it to Ivan unlinks it from Olga
    payload = await bot.resources.dispatcher["invites"].create(tenant.staff_id)
    await say(new_phone, f"/start {payload}")
    assert (await tenant.core.catalogue.get_staff(olga_id)).telegram_user_id is None
    assert "Your desk, Ivan" in (await say(new_phone, "/staff"))["text"]


async def test_a_restart_gives_the_menu_to_members_linked_without_one(start_bot, tenant) -> None:
    """Members linked before the menu existed (or when Telegram refused it) get it at the next
    start, in the language they chose; a switched-off member gets none."""
    bot = await start_bot()
    olga = await bot.customer("Olga")
    await say(olga, "/language")
    await tap(olga, "🇷🇺 Русский")
    await tenant.core.catalogue.create_staff(  # linked in the database: no menu yet
        name="Olga", service_ids=[tenant.service_id], telegram_user_id=olga.id
    )
    assert await _menu(bot, olga.id) is None
    boris = await bot.customer("Boris")
    away = await tenant.core.catalogue.create_staff(
        name="Boris", service_ids=[tenant.service_id], telegram_user_id=boris.id
    )
    await tenant.core.catalogue.update_staff(away.id, active=False)
    await tenant.core.catalogue.update_staff(tenant.staff_id, telegram_user_id=bot.owner.id)
    await bot.shutdown()

    bot = await start_bot()
    menu = await _menu(bot, olga.id)
    assert menu is not None and menu[0]["description"] == "Рабочее место: мой день, новая запись"
    assert await _menu(bot, boris.id) is None
    owner_menu = await _menu(bot, bot.owner.id)  # the owner, linked as Ivan, keeps /admin
    assert owner_menu is not None and owner_menu[0]["command"] == "admin"
