"""An owner hears about their bots in the language they speak with the sales bot: the one their
Telegram app reports when we first see them, or the one they choose with /language."""

from __future__ import annotations

import secrets

import asyncpg

from fleet.repositories import owners as owner_repo
from sandbox.telegram import TelegramSandbox
from tests.support.sales_bot_support import RunningSalesBot


async def test_first_sighting_remembers_the_app_language_and_language_changes_it(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, pool: asyncpg.Pool
) -> None:
    user = await telegram_sandbox.user(
        bot_id=sales_bot.bot_id,
        first_name="Ivan",
        language_code="en",
        id=secrets.randbelow(10**9) + 7 * 10**9,
    )
    welcome = await user.ask("/start")
    assert "Hello, Ivan" in welcome["text"]
    assert await owner_repo.locales_of(pool, [user.id]) == {user.id: "en"}

    prompt = await user.ask("/language")
    assert "Which language" in prompt["text"]
    await user.click("Русский")
    done = await user.wait_answer()
    assert "по-русски" in done["text"]
    assert await owner_repo.locales_of(pool, [user.id]) == {user.id: "ru"}
    # From now on the bot speaks Russian with them, whatever their app says.
    again = await user.ask("/start")
    assert "Здравствуйте, Ivan" in again["text"], again["text"]

    # The main menu offers the choice too.
    assert any("Язык" in b["text"] for row in again["reply_markup"]["inline_keyboard"] for b in row)
