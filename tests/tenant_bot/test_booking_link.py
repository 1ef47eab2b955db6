"""Booking links and their QR codes: the owner gets them from /admin, a customer who follows one
lands on that choice; a forged or stale link gets the normal welcome."""

from __future__ import annotations

import asyncio
import io
from datetime import date
from typing import Any

import zxingcpp
from PIL import Image

from tenant_bot.booking import WorkInterval
from tenant_bot.deep_links import LinkTarget, link, parse, qr_png
from tests.support.chat_helpers import buttons, say, tap, wait_for_text

HAIRCUT = "Haircut · 1 h · 1\u202f500 ₽"
BEARD = "Beard · 30 min · 700 ₽"


def decode_qr(png: bytes) -> str:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width >= 400, "big enough to print"
    [found] = zxingcpp.read_barcodes(image)
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    return found.text


async def test_owner_gets_links_and_qr_codes_that_decode_to_them(start_bot, tenant) -> None:
    bot = await start_bot()
    username = bot.resources.me.username
    menu = await say(bot.owner, "/admin")
    assert "🔗 Booking link" in [b["text"] for row in menu["inline_keyboard"] for b in row]
    screen = await tap(bot.owner, "🔗 Booking link")
    business = f"https://t.me/{username}?start=book"
    assert business in screen["text"]
    assert {"💈 Haircut", "👤 Ivan"} <= set(await buttons(bot.owner))

    await tap(bot.owner, "🖨 QR code to print")
    message = await wait_for_text(bot.owner, business)
    assert message["document"]["file_name"] == "qr-book.png"
    assert decode_qr(await bot.owner.download(message)) == business

    one = await tap(bot.owner, "💈 Haircut")
    service_link = f"https://t.me/{username}?start=s{tenant.service_id}"
    assert service_link in one["text"]
    await tap(bot.owner, "🖨 QR code to print")
    message = await wait_for_text(bot.owner, service_link)
    assert decode_qr(await bot.owner.download(message)) == service_link

    await say(bot.owner, "/admin")
    await tap(bot.owner, "🔗 Booking link")
    staff_screen = await tap(bot.owner, "👤 Ivan")
    assert f"https://t.me/{username}?start=f{tenant.staff_id}" in staff_screen["text"]


def test_payloads_round_trip_and_forgeries_are_refused() -> None:
    for target in (LinkTarget("b"), LinkTarget("s", 12), LinkTarget("f", 7)):
        assert parse(target.payload) == target
    for forged in ("", None, "s", "s0", "s01", "x12", "s12f3", "s-1", "book1", "s" + "9" * 13):
        assert parse(forged) is None
    url = link("barber_bot", LinkTarget("s", 12))
    assert url == "https://t.me/barber_bot?start=s12"
    assert decode_qr(qr_png(url)) == url


async def _seed_two_services_two_staff(tenant: Any) -> tuple[int, int]:
    """Haircut: Ivan and Olga; Beard: Olga only. Returns (beard id, Olga's id)."""
    core = tenant.core
    beard = await core.catalogue.create_service(name="Beard", duration_minutes=30, price=700)
    olga = await core.catalogue.create_staff(name="Olga", service_ids=[tenant.service_id, beard.id])
    for weekday in range(7):
        await core.catalogue.set_working_hours(
            olga.id, weekday, [WorkInterval.parse("10:00-18:00")]
        )
    return beard.id, olga.id


async def land(user: Any, command: str, screen: str) -> dict[str, Any]:
    """Follow a link (``/start <payload>``) and wait for the screen it lands on: the welcome
    comes first, then the screen."""
    await say(user, command)
    return await wait_for_text(user, screen)


async def _finish(user: Any, time: str, name: str) -> None:
    await tap(user, "8")
    await tap(user, time)
    await say(user, name)
    await say(user, "+79161234567")
    await tap(user, "✅ Confirm")


async def test_links_land_on_the_service_or_staff_member(start_bot, tenant) -> None:
    beard, olga = await _seed_two_services_two_staff(tenant)
    bot = await start_bot()

    # a service with two staff members: the staff choice
    anna = await bot.customer("Anna")
    landed = await land(anna, f"/start s{tenant.service_id}", "Who would you like to see?")
    assert "Who would you like to see?" in landed["text"] and "Haircut" in landed["text"]
    assert {"Ivan", "Olga"} <= set(await buttons(anna))

    # a service only Olga gives: straight to the days
    boris = await bot.customer("Boris")
    landed = await land(boris, f"/start s{beard}", "Choose a day")
    assert "Choose a day" in landed["text"] and "Beard" in landed["text"]
    await _finish(boris, "10:00", "Boris")

    # Olga's link: her two services, then her days (no staff choice)
    clara = await bot.customer("Clara")
    landed = await land(clara, f"/start f{olga}", "Choose a service")
    assert "Choose a service" in landed["text"]
    assert [b for b in await buttons(clara) if "·" in b] == [BEARD, HAIRCUT]
    landed = await tap(clara, HAIRCUT)
    assert "Choose a day" in landed["text"]
    await _finish(clara, "12:00", "Clara")

    # Ivan's link: his one service, straight to the days
    dmitry = await bot.customer("Dmitry")
    landed = await land(dmitry, f"/start f{tenant.staff_id}", "Choose a day")
    assert "Choose a day" in landed["text"] and "Haircut" in landed["text"]
    await _finish(dmitry, "14:00", "Dmitry")

    # the business link: the list of services
    eva = await bot.customer("Eva")
    landed = await land(eva, "/start book", "Choose a service")
    assert "Choose a service" in landed["text"]
    assert [b for b in await buttons(eva) if "·" in b] == [BEARD, HAIRCUT]

    booked = {
        (d.customer_name, d.service_name, d.staff_name)
        for d in await tenant.core.bookings.for_day(date(2030, 1, 8))
    }
    assert booked == {
        ("Boris", "Beard", "Olga"),
        ("Clara", "Haircut", "Olga"),
        ("Dmitry", "Haircut", "Ivan"),
    }


async def test_forged_and_stale_links_get_the_normal_welcome(start_bot, tenant) -> None:
    beard, olga = await _seed_two_services_two_staff(tenant)
    await tenant.core.catalogue.update_service(beard, active=False)
    await tenant.core.catalogue.update_staff(olga, active=False)
    bot = await start_bot()
    anna = await bot.customer("Anna")
    payloads = [f"s{beard}", f"f{olga}", "s999999", "f0", "s12x", "<script>", "book" * 20]
    for n, payload in enumerate(payloads, start=1):
        await say(anna, f"/start {payload}")
        for _ in range(100):  # the welcome, then the menu: each /start adds one of each
            texts = [m["text"] or "" for m in await anna.messages() if m["from"] == "bot"]
            if texts.count("What would you like to do?") == n:
                break
            await asyncio.sleep(0.05)
        assert texts.count("What would you like to do?") == n, payload
        assert sum("Barber <Ivan>" in t for t in texts) == n, payload
        assert not any("Choose a" in t or "Who would you like" in t for t in texts), payload
    assert await tenant.core.bookings.for_day(date(2030, 1, 8)) == []
