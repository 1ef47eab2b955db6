"""The whole journey by people in a browser: headless Chromium on the sandbox web page of a real
``botfleet up`` (process runtime).

The owner creates their user on the page, buys a bot in the sales bot, pays on the YooKassa checkout page that the pay link opens in a new tab, is
told the bot is live, opens the new bot from the list and sets it up in /admin. A customer, created
on the same page, books with the reply keyboard's "share my phone" button. The owner switches back,
sees the notification and the booking in /admin's schedule. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from sandbox.telegram import TelegramSandbox
from tests.support.e2e_browser_support import (
    Person,
    browser_skip_reason,
    is_free_day,
    is_time,
    start_chromium,
)
from tests.support.e2e_support import (
    OWNER_ZONE_LABEL,
    PLAN_LABEL,
    StartPlatform,
    bot_id_of,
    sales_bot_id,
    tomorrow_weekday,
)

OWNER_ID = 555_000_111
CUSTOMER_ID = 555_000_222


def journey_in_browser(person: Person, *, sales_bot: int, token: str) -> dict[str, str]:
    """Both people's side, run in a thread; returns what the final screens said."""
    seen: dict[str, str] = {}
    person.open()
    person.new_user("Иван", OWNER_ID, "+79990001122")

    # The owner buys in the sales bot and pays on the checkout page.
    person.open_chat(sales_bot)
    person.say("/start", "botfleet")
    person.tap("Choose one", text="🛒 Plans and purchase")
    person.tap("What is your business called", text=PLAN_LABEL)
    person.say("Иван's barbershop", "@BotFather")
    person.say(token, "time zone")
    person.tap("language", text=OWNER_ZONE_LABEL)
    person.tap("Renew automatically", text="English")
    person.tap("Press the button to pay", text="No, I'll pay myself")
    person.screenshot("e2e-browser-pay.png")
    person.pay_in_new_tab("Pay 990")
    seen["live"] = person.wait_any("is live")

    # The owner sets the new bot up in its /admin.
    bot_id = bot_id_of(token)
    person.open_chat(bot_id)
    # A bot never written to shows Start, as in Telegram: the welcome, then the menu.
    person.say("/start", "What would you like to do?")
    person.say("/admin", "Owner menu")
    person.tap("Services", text="💈 Services")
    person.tap("name; minutes; price", text="➕ Add a service")
    person.say("Haircut; 60; 1500", "Haircut")
    person.say("/admin", "Owner menu")
    person.tap("Staff: 1", text="👥 Staff & hours")  # the owner is the staff member
    person.tap("Services: Haircut", text="Иван")
    day = tomorrow_weekday()
    person.tap("tap a day to change it", text="🕘 Working hours")
    person.tap("Send the hours", text=f"{day}: day off")
    person.say("09:00-18:00", f"{day}: 09:00-18:00")

    # A customer books, sharing their phone with the reply keyboard's button.
    person.new_user("Anna", CUSTOMER_ID, "+79161234567")
    person.open_chat(bot_id)
    person.say("/start", "What would you like to do?")
    person.say("/book", "Choose a service")
    person.tap("Choose a day", pick=lambda label: label.startswith("Haircut"))
    if not any(is_free_day(label) for label in person.last_buttons()):
        person.tap("Choose a day", text="▶")  # tomorrow is in the next month
    person.tap("choose a time", pick=is_free_day)
    person.tap("What name", pick=is_time)
    person.say("Anna", "phone number")
    person.share_contact("Please check your booking")
    seen["booked"] = person.tap("You are booked", text="✅ Confirm")
    seen["files"] = " ".join(person.wait(lambda _: person.bot_files(), "the calendar file"))
    person.screenshot("e2e-browser-customer.png")

    # The owner is told and sees the booking in tomorrow's schedule.
    person.switch_user(OWNER_ID)
    person.open_chat(bot_id)
    seen["note"] = person.wait_any("New booking")
    person.say("/admin", "Owner menu")
    seen["schedule"] = person.tap("1 booking", text="📋 Tomorrow")
    shot = person.screenshot("e2e-browser-owner-schedule.png")
    seen["screenshot_bytes"] = str(shot.stat().st_size)
    seen["errors"] = repr(person.severe_console_errors())
    person.driver.get("about:blank")  # end the page's long poll before the platform stops
    return seen


@pytest.mark.slow
async def test_the_journey_in_a_browser(start_platform: StartPlatform) -> None:
    if reason := browser_skip_reason():
        pytest.skip(reason)
    up = await start_platform(runtime="process")
    assert up.banner is not None
    async with TelegramSandbox(up.banner.emulator_url) as sandbox:
        sales_bot = await sales_bot_id(sandbox)
    profile = Path(tempfile.mkdtemp(prefix="botfleet-e2e-chromium-"))
    driver = await asyncio.to_thread(start_chromium, profile)
    try:
        person = Person(driver, up.banner.web_url)
        try:
            seen = await asyncio.to_thread(
                journey_in_browser, person, sales_bot=sales_bot, token=up.banner.tokens[0]
            )
        except Exception:
            await asyncio.to_thread(person.screenshot, "e2e-browser-failure.png")
            raise
    finally:
        await asyncio.to_thread(driver.quit)
        shutil.rmtree(profile, ignore_errors=True)

    assert "@demo_booking_1_bot" in seen["live"]
    assert "Haircut" in seen["booked"]
    assert ".ics" in seen["files"], seen["files"]
    assert "Anna" in seen["note"] and "+79161234567" in seen["note"]
    assert "1 booking" in seen["schedule"] and "Anna (confirmed)" in seen["schedule"]
    assert seen["errors"] == "[]"
    assert int(seen["screenshot_bytes"]) > 10_000
    assert await up.interrupt() == 0, up.stderr_tail()
