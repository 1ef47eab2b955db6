"""The tenant bot's messages read line by line as written (issue 16, item 1), in both languages.

A customer opens the bot and books; the welcome, the booking confirmation, "My bookings" and the
owner's /help are read the way the sandbox shows them to a person (HTML parsed into plain text), and
each expected line must be a line of its own: "Добро пожаловать в Барбершоп Ивана!📍 Москва…" and
"💳 1 500 ₽📍 …" were what people saw while ``trim_blocks`` ate the newlines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from kit.formats import money
from tenant_bot.texts import BotTexts
from tests.support.chat_helpers import say, tap

TEXTS = BotTexts()
PRICE = money(1500, "RUB")
TUESDAY_10 = datetime(2030, 1, 8, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
MOSCOW = ZoneInfo("Europe/Moscow")


def lines(message: dict[str, object]) -> list[str]:
    return str(message["text"]).split("\n")


@pytest.mark.parametrize("locale", ["ru", "en"])
async def test_welcome_and_confirmation_keep_their_lines(start_bot, tenant, locale: str) -> None:
    await tenant.core.catalogue.update_settings(
        business_name="Барбершоп Ивана",
        address="Москва, ул. Ленина, 1",
        phone="+7 495 123-45-67",
    )
    bot = await start_bot()
    anna = await bot.customer("Anna", language_code=locale)

    await say(anna, "/start")
    welcome = next(
        m for m in reversed(await anna.messages()) if "Барбершоп Ивана" in (m["text"] or "")
    )
    greeting = (
        TEXTS(locale, "welcome", name="Барбершоп Ивана").replace("<b>", "").replace("</b>", "")
    )
    assert lines(welcome) == [greeting, "📍 Москва, ул. Ленина, 1", "☎️ +74951234567"]

    await say(anna, "/book")
    duration = TEXTS.duration(locale, 60)
    await tap(anna, f"Haircut · {duration} · {PRICE}")
    await tap(anna, "8")
    await tap(anna, "10:00")
    await say(anna, "Anna")
    await say(anna, "+79161234567")
    booked = await tap(anna, TEXTS(locale, "btn_confirm"))
    text = lines(booked)
    assert text[2:] == [
        "💈 Haircut",
        "👤 Ivan",
        f"🕒 {TEXTS.when(locale, TUESDAY_10, MOSCOW)}",
        f"💳 {PRICE}",
        "📍 Москва, ул. Ленина, 1",
        "☎️ +74951234567",
    ], booked["text"]

    await say(anna, "/my")
    card = await tap(anna, f"{TEXTS.when(locale, TUESDAY_10, MOSCOW)} · Haircut")
    status = {"ru": "Статус: ", "en": "Status: "}[locale] + TEXTS(locale, "status_confirmed")
    assert lines(card)[3:6] == [f"💳 {PRICE}", status, "📍 Москва, ул. Ленина, 1"], card["text"]


async def test_owner_help_lists_one_command_a_line(start_bot) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    help_text = await say(bot.owner, "/help")
    commands = [line for line in lines(help_text) if line.startswith("/")]
    assert [c.split(" ")[0] for c in commands] == [
        "/book",
        "/my",
        "/language",
        "/start",
        "/admin",
    ], help_text["text"]


async def test_admin_settings_name_the_time_zone_as_people_know_it(start_bot, tenant) -> None:
    """Issue 16, item 7: "Time zone: Moscow (UTC+3)", not "Europe/Moscow"."""
    bot = await start_bot()
    await say(bot.owner, "/admin")
    settings = await tap(bot.owner, TEXTS("en", "adm_btn_settings"))
    assert "Time zone: Moscow (UTC+3)" in lines(settings), settings["text"]
    assert "Europe/Moscow" not in settings["text"]
