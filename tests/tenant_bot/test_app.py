"""The process: contract errors, readiness heartbeat, SIGTERM, command menus, languages, webhook
mode and Telegram flood control."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

from sandbox.telegram import RateLimits
from schemas.runtime import HEARTBEAT_TTL_SECONDS
from tenant_bot.texts import BotTexts
from tests.support.chat_helpers import book_first_slot, buttons, say, tap

ROOT = Path(__file__).resolve().parents[2]


async def test_texts_exist_in_every_locale() -> None:
    assert BotTexts().missing() == {}


async def test_contract_error_exits_2_naming_variables() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_TENANT_")}
    env["BOTFLEET_TENANT_SLUG"] = "Bad Slug"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "tenant-bot",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    message = err.decode()
    assert message.count("\n") == 1
    for name in (
        "BOTFLEET_TENANT_SLUG",
        "BOTFLEET_TENANT_BOT_TOKEN",
        "BOTFLEET_TENANT_DATABASE_URL",
    ):
        assert name in message


async def test_heartbeat_written_when_ready_and_cleared_on_stop(start_bot, tenant, redis) -> None:
    bot = await start_bot()
    key = tenant.names.redis_prefix + "heartbeat"
    beat = json.loads(await redis.get(key))
    assert beat["bot"] == f"{tenant.names.slug}_bot"
    assert 0 < await redis.ttl(key) <= HEARTBEAT_TTL_SECONDS
    commands = (await bot.sandbox.bot(bot.bot_id))["commands"]
    assert commands  # setMyCommands ran before readiness
    await bot.shutdown()
    assert await redis.get(key) is None


async def test_sigterm_stops_the_process_cleanly(start_bot, tenant, redis) -> None:
    """``python -m tenant_bot`` from the environment, ready within seconds, gone on SIGTERM."""
    bot = await start_bot()  # registers the bot with the emulator; its env is reused below
    await bot.shutdown()
    env = {**os.environ, **bot.runtime.to_env(), "BOTFLEET_LOG_LEVEL": "INFO"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenant_bot", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    key = tenant.names.redis_prefix + "heartbeat"
    # A fresh interpreter imports aiogram first: seconds on an idle machine, far more on a loaded
    # one, so wait for readiness generously (this is not a timing assertion).
    async with asyncio.timeout(60):
        while not await redis.get(key) and proc.returncode is None:  # noqa: ASYNC110 (polls Redis)
            await asyncio.sleep(0.05)
    assert await redis.get(key), "no heartbeat from the subprocess"
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert await redis.get(key) is None
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(line["msg"] == "tenant bot stopped" for line in lines)
    assert bot.runtime.bot_token.get_secret_value() not in err.decode()


async def test_commands_per_language_and_language_switch(start_bot, tenant, emulator) -> None:
    bot = await start_bot()
    await say(bot.owner, "/start")
    world_bot = emulator.world.bots[bot.bot_id]
    registered = str(world_bot.commands)
    assert "Записаться" in registered and "Book a time" in registered and "Owner menu" in registered

    ivan = await bot.customer("Ivan", language_code="ru")
    menu = await say(ivan, "/start")
    assert "Что вы хотите сделать?" in menu["text"]
    await tap(ivan, "🌐 Язык")
    switched = await tap(ivan, "🇬🇧 English")
    assert "What would you like to do?" in switched["text"]
    final = await book_first_slot(ivan)
    assert "You are booked" in final["text"]
    customer = await tenant.core.customers.by_telegram_id(ivan.id)
    assert customer.locale == "en"


async def test_webhook_mode(start_bot, tenant, emulator, unused_tcp_port) -> None:
    port = unused_tcp_port
    bot = await start_bot(
        runtime={
            "mode": "webhook",
            "webhook_url": f"http://127.0.0.1:{port}/tg/hook",
            "webhook_secret": "s3cret-token",
            "webhook_port": port,
        }
    )
    anna = await bot.customer("Anna")
    final = await book_first_slot(anna)
    assert "You are booked" in final["text"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        forged = await client.post(f"http://127.0.0.1:{port}/tg/hook", json={"update_id": 1})
        assert forged.status_code == 401  # no secret token
        await bot.shutdown()
        # A stopped bot keeps its webhook (Telegram holds updates for the next start); remove it
        # so the emulator does not keep delivering to a closed port.
        token = bot.runtime.bot_token.get_secret_value()
        await client.post(f"{emulator.base_url}/bot{token}/deleteWebhook")


async def test_flood_control_is_waited_out(start_bot, tenant, emulator) -> None:
    emulator.set_rate_limits(RateLimits(per_chat_per_second=1.0, per_chat_burst=2))
    bot = await start_bot()
    anna = await bot.customer("Anna")
    await say(anna, "/start")  # two messages: welcome and menu
    await say(anna, "/help")
    reply = await tap(anna, "📅 Book")
    assert "Choose a service" in reply["text"]
    assert "Haircut · 1 h · 1\u202f500 ₽" in await buttons(anna)


async def test_first_start_seeds_profile_and_serves_health(
    start_bot, tenant, unused_tcp_port
) -> None:
    await tenant.core.catalogue.update_settings(business_name="", time_zone="UTC")
    bot = await start_bot(
        runtime={
            "display_name": "Studio Nova",
            "timezone": "Asia/Yekaterinburg",
            "health_port": unused_tcp_port,
        }
    )
    settings = await tenant.core.catalogue.get_settings()
    assert (settings.business_name, settings.time_zone) == ("Studio Nova", "Asia/Yekaterinburg")
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{unused_tcp_port}/healthz")).status_code == 200
    await tenant.core.catalogue.update_settings(business_name="Renamed")
    await bot.shutdown()
    await start_bot(runtime={"display_name": "Studio Nova"})
    assert (await tenant.core.catalogue.get_settings()).business_name == "Renamed"


async def test_the_bots_name_follows_the_business_name(start_bot, tenant, emulator) -> None:
    from tenant_bot.callbacks import Admin, Profile

    await tenant.core.catalogue.update_settings(business_name="")
    bot = await start_bot(runtime={"display_name": "Studio Nova"})
    account = emulator.world.bots[bot.bot_id]
    assert account.first_name == "Studio Nova", "the sidebar and chat list show the business"

    owner = bot.owner
    await owner.ask("/admin")
    await owner.click(data=Admin(section="profile").pack())
    name_button = Profile(field="name").pack()
    await owner.wait_for_bot_message(
        lambda m: any(
            b.get("callback_data") == name_button for row in m["inline_keyboard"] or [] for b in row
        ),
        timeout=10,
    )
    await owner.click(data=name_button)
    await owner.wait_answer()
    await owner.ask("Barbershop Ivan")
    assert account.first_name == "Barbershop Ivan"
    await bot.shutdown()
    await start_bot(runtime={"display_name": "Studio Nova"})
    assert account.first_name == "Barbershop Ivan", "the owner's name wins over the contract's"
