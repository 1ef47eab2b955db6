"""Owners are told things in their own language, not the customers' default one.

The bot's default (customers') locale is English here; one owner's Telegram app is Russian, another's
English, a third chose Russian in the bot although their app is English, and a fourth owner's chat
does not exist (which must not keep the notice from the others).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from sandbox.telegram import TelegramEmulator, TelegramSandbox, TelegramUser
from schemas.runtime import TenantRuntime
from tenant_bot.app import run
from tenant_bot.resources import BotResources
from tests.support.chat_helpers import book_first_slot, say, tap, wait_for_text

GHOST_OWNER = 990_000_000_002


class Owners:
    def __init__(self, resources: BotResources, **owners: TelegramUser) -> None:
        self.resources = resources
        self.by_name = owners

    def __getattr__(self, name: str) -> TelegramUser:
        return self.by_name[name]


@pytest.fixture
async def shop(
    tenant: Any, emulator: TelegramEmulator, sandbox: TelegramSandbox, clock: Any
) -> AsyncIterator[Owners]:
    """A bot with four owners (one without a chat); English is the customers' language."""
    bot_id = 7_000_000_000 + secrets.randbelow(10**8)
    token = f"{bot_id}:{secrets.token_urlsafe(30)[:35].replace('-', 'a')}"
    await sandbox.register_bot(token, username=f"{tenant.names.slug}_bot")
    russian = await sandbox.create_user("Pyotr", language_code="ru")
    english = await sandbox.create_user("Paul", language_code="en-GB")
    chooser = await sandbox.create_user("Polina", language_code="en")
    runtime = TenantRuntime(
        slug=tenant.names.slug,
        bot_token=token,
        database_url=tenant.database_url,
        redis_url=tenant.redis_url,
        redis_prefix=tenant.names.redis_prefix,
        owner_ids=[GHOST_OWNER, russian["id"], english["id"], chooser["id"]],
        locale="en",
        telegram_api_base=emulator.base_url,
    )
    ready: asyncio.Future[BotResources] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run(runtime, stop=stop, clock=clock, on_ready=ready.set_result, rate_limit=(100, 10))
    )
    done, _ = await asyncio.wait([ready, task], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    owners = Owners(
        ready.result(),
        russian=sandbox.as_user(bot_id=bot_id, user_id=russian["id"]),
        english=sandbox.as_user(bot_id=bot_id, user_id=english["id"]),
        chooser=sandbox.as_user(bot_id=bot_id, user_id=chooser["id"]),
        customer=await sandbox.user(bot_id=bot_id, first_name="Anna", language_code="en"),
    )
    try:
        yield owners
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_owner_notices_in_each_owners_language(shop: Owners, clock: Any) -> None:
    await say(shop.russian, "/start")
    await say(shop.english, "/start")
    await say(shop.chooser, "/start")
    await say(shop.chooser, "/language")
    await tap(shop.chooser, "🇷🇺 Русский")

    await book_first_slot(shop.customer, time="10:00")
    assert "Новая запись" in (await wait_for_text(shop.russian, "Новая запись"))["text"]
    assert "New booking" in (await wait_for_text(shop.english, "New booking"))["text"]
    await wait_for_text(shop.chooser, "Новая запись")
    notifier = shop.resources.notifier
    for _ in range(100):  # the background loop sends the notices one by one
        if notifier.tally.failed:
            break
        await asyncio.sleep(0.05)
    assert notifier.tally.failed == {"owner_notice": 1}  # the owner without a chat, alone

    clock.advance(timedelta(days=1, hours=2, minutes=5))  # the booking has ended
    shop.resources.background.wake.set()
    await wait_for_text(shop.russian, "Клиент пришёл?")
    await wait_for_text(shop.english, "Did the customer come?")
    await wait_for_text(shop.chooser, "Клиент пришёл?")
    assert notifier.tally.failed == {"owner_notice": 1, "completion_card": 1}


async def test_owner_language_follows_the_telegram_app_until_chosen(shop: Owners) -> None:
    notifier = shop.resources.notifier
    assert await notifier.owner_locale(shop.russian.id) == "en"  # never seen: the default
    await say(shop.russian, "/start")
    assert await notifier.owner_locale(shop.russian.id) == "ru"  # as their app last said
    await say(shop.russian, "/language")
    await tap(shop.russian, "🇬🇧 English")
    assert await notifier.owner_locale(shop.russian.id) == "en"  # their choice wins
