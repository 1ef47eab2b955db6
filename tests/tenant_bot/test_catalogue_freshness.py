"""Customers see every change of the catalogue at once, and nobody has to invalidate anything.

The bot keeps one catalogue cache (``tenant_bot/booking/catalogue_cache.py``); what customers are
shown is checked against the catalogue's version, which database triggers move at every change. So a
change written straight into the tenant's database, as a future owner screen that forgot to tell
any cache would write it, reaches the very next customer read, and so do the owner's own edits.
"""

from __future__ import annotations

import asyncio

import asyncpg

from tenant_bot.booking import BookingCore
from tests.support.chat_helpers import buttons, say, tap

HAIRCUT = "Haircut · 1 h · 1\u202f500 ₽"


async def _welcome(user) -> str:  # type: ignore[no-untyped-def]
    """The text of /start's first message (the business profile)."""
    await say(user, "/start")
    return (await user.messages())[-2]["text"]


async def test_a_change_written_straight_to_the_database_reaches_the_next_customer_read(
    start_bot, tenant
) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    assert "Tverskaya 1" in await _welcome(anna)
    await say(anna, "/book")
    assert HAIRCUT in await buttons(anna)  # the catalogue is cached now

    # The tenant's own role, a connection of its own: no code of the bot runs, nothing is told.
    conn = await asyncpg.connect(tenant.database_url)
    try:
        await conn.execute("UPDATE settings SET address = 'Arbat 5'")
        assert "Arbat 5" in await _welcome(anna)

        await conn.execute(
            "UPDATE services SET name = 'Fade', price = 1800 WHERE id = $1", tenant.service_id
        )
        await say(anna, "/book")
        labels = await buttons(anna)
        assert "Fade · 1 h · 1\u202f800 ₽" in labels and HAIRCUT not in labels

        olga = await conn.fetchval("INSERT INTO staff (name) VALUES ('Olga') RETURNING id")
        await conn.execute(
            "INSERT INTO staff_services (staff_id, service_id) VALUES ($1, $2)",
            olga,
            tenant.service_id,
        )
        await conn.execute(  # Tuesdays 12:00-14:00
            "INSERT INTO working_hours (staff_id, weekday, start_minute, end_minute)"
            " VALUES ($1, 1, 720, 840)",
            olga,
        )
        staff_screen = await tap(anna, "Fade · 1 h · 1\u202f800 ₽")
        assert "Who would you like to see?" in staff_screen["text"]
        assert await buttons(anna) == ["Anyone available", "Ivan", "Olga", "« Back"]

        await tap(anna, "Olga")
        await tap(anna, "8")
        await tap(anna, "12:00")
        await say(anna, "Anna")
        await conn.execute("UPDATE staff SET name = 'Olga K' WHERE id = $1", olga)
        await conn.execute("UPDATE services SET price = 2000 WHERE id = $1", tenant.service_id)
        summary = await say(anna, "+79161234567")
        assert "Olga K" in summary["text"] and "2\u202f000 ₽" in summary["text"]

        await conn.execute("UPDATE staff SET active = false WHERE id = $1", olga)
        await say(anna, "/book")
        calendar = await tap(anna, "Fade · 1 h · 2\u202f000 ₽")
        assert "Who would you like to see?" not in calendar["text"]  # Ivan alone now

        await conn.execute("UPDATE services SET active = false WHERE id = $1", tenant.service_id)
        assert "no services" in (await say(anna, "/book"))["text"].lower()
    finally:
        await conn.close()


async def test_the_owners_edits_reach_customers_at_once(start_bot, tenant) -> None:
    bot = await start_bot()
    anna = await bot.customer("Anna")
    # A returning customer: tapping a time goes straight to the summary, the step with no query.
    await tenant.core.customers.register(anna.id, name="Anna", phone="+79161234567", locale="en")
    await say(anna, "/book")
    await tap(anna, HAIRCUT)
    await tap(anna, "8")

    owner = bot.owner
    await say(owner, "/admin")
    await tap(owner, "💈 Services")
    await tap(owner, HAIRCUT)
    await tap(owner, "✏️ Edit")
    await say(owner, "Haircut; 60; 1700")
    summary = await tap(anna, "10:00")
    assert "Please check your booking" in summary["text"] and "1\u202f700 ₽" in summary["text"]

    await say(owner, "/admin")
    await tap(owner, "💈 Services")
    await tap(owner, "➕ Add a service")
    await say(owner, "Beard trim; 30; 700")
    await say(anna, "/book")
    assert "Beard trim · 30 min · 700 ₽" in await buttons(anna)

    await say(owner, "/admin")
    await tap(owner, "💈 Services")
    await tap(owner, "Haircut · 1 h · 1\u202f700 ₽")
    await tap(owner, "⏸ Switch off")
    await say(anna, "/book")
    labels = await buttons(anna)
    assert "Beard trim · 30 min · 700 ₽" in labels and not any("Haircut" in b for b in labels)

    await say(owner, "/admin")
    await tap(owner, "🏷 Business profile")
    await tap(owner, "Address")
    await say(owner, "Arbat 5")
    assert "Arbat 5" in await _welcome(anna)


async def test_one_copy_serves_until_the_version_moves(tenant) -> None:
    """The cache still caches: while nothing changes every request gets the same copy (one version
    check, no reload); a change anywhere gives the next request a new copy, and requests waiting
    meanwhile share one reload."""
    catalogue = tenant.core.catalogue
    first = await catalogue.reader().view()
    assert await catalogue.reader().view() is first

    pool = await asyncpg.create_pool(tenant.database_url, min_size=1, max_size=2)
    try:
        other = BookingCore(pool)  # another process, as far as caches go
        await other.catalogue.update_settings(address="Arbat 5")
        reader = catalogue.reader()
        changed = await reader.view()
        assert changed is not first and changed.version > first.version
        assert (await reader.settings()).address == "Arbat 5"

        # One request sees one version (its screen is built from one copy) ...
        await other.catalogue.update_settings(address="Arbat 7")
        assert (await reader.settings()).address == "Arbat 5"
        # ... until this process edits the catalogue itself.
        await catalogue.update_service(tenant.service_id, name="Fade")
        assert [s.name for s in await reader.services()] == ["Fade"]
        assert (await reader.settings()).address == "Arbat 7"

        # The one step that must make no query (a time tapped: its summary) shows the copy as last
        # found current; the next checked read finds the change.
        held = await catalogue.reader().view()
        await other.catalogue.update_service(tenant.service_id, name="Trim")
        assert await catalogue.reader().recent() is held
        views = await asyncio.gather(*(catalogue.reader().view() for _ in range(8)))
        assert len({id(v) for v in views}) == 1  # those waiting shared one reload
        assert [s.name for s in views[0].services.values()] == ["Trim"]
        assert await catalogue.reader().recent() is views[0]
    finally:
        await pool.close()
