"""The same aiogram bot in webhook mode: secret token, replies in the webhook answer, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from sandbox._http import serve_app
from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.testing import bot_id_of, make_bot, new_bot_token
from tests.support.sandbox_demo_bot import build_dispatcher

SECRET = "s3cret-token"


@asynccontextmanager
async def webhook_bot(
    emulator: TelegramEmulator,
    control: TelegramSandbox,
    *,
    in_background: bool,
) -> AsyncIterator[tuple[int, web.Application]]:
    token = new_bot_token()
    await control.register_bot(token, username=f"hook{bot_id_of(token)}_bot")
    bot = make_bot(emulator, token)
    dp = build_dispatcher()
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token=SECRET, handle_in_background=in_background).register(
        app, path="/tg"
    )
    running = await serve_app(app, host="127.0.0.1", port=0)
    await bot.set_webhook(f"{running.base_url}/tg", secret_token=SECRET)
    try:
        yield bot_id_of(token), app
    finally:
        await bot.delete_webhook()
        await running.stop()
        await bot.session.close()


async def test_webhook_reply_in_response_body(telegram_emulator, telegram_sandbox):
    async with webhook_bot(telegram_emulator, telegram_sandbox, in_background=False) as (bot_id, _):
        user = await telegram_sandbox.user(bot_id=bot_id)
        welcome = await user.ask("/start")
        assert welcome["text"] == "Welcome! Pick a slot:"
        query_id = await user.click(data="book:10:00")
        assert (await user.callback_answer(query_id))["text"] == "Booked 10:00"
        assert (await user.wait_answer())["text"] == "Booked for 10:00"


async def test_webhook_background_handling_and_fsm(telegram_emulator, telegram_sandbox):
    async with webhook_bot(telegram_emulator, telegram_sandbox, in_background=True) as (bot_id, _):
        user = await telegram_sandbox.user(bot_id=bot_id)
        assert (await user.ask("/signup"))["text"] == "What is your name?"
        assert (await user.ask("Ann"))["text"].startswith("Nice to meet you, Ann!")


async def test_wrong_secret_is_retried_and_reported(telegram_emulator, telegram_sandbox):
    async with webhook_bot(telegram_emulator, telegram_sandbox, in_background=True) as (bot_id, _):
        account = telegram_emulator.world.bots[bot_id]
        assert account.webhook is not None
        account.webhook.secret_token = "not-the-bot-secret"  # the bot's server answers 401
        user = await telegram_sandbox.user(bot_id=bot_id)
        await user.send("/start")
        for _ in range(100):
            if account.webhook.last_error_message:
                break
            await asyncio.sleep(0.02)
        info = await telegram_sandbox.bot(bot_id)
        assert info["webhook"]["last_error_message"].startswith(
            "Wrong response from the webhook: 401"
        )
        assert info["pending_update_count"] == 1
        account.webhook.secret_token = SECRET  # fixed: the retry delivers the update
        assert (await user.wait_answer())["text"] == "Welcome! Pick a slot:"


async def test_get_updates_conflicts_with_webhook(telegram_emulator, telegram_sandbox):
    async with webhook_bot(telegram_emulator, telegram_sandbox, in_background=True) as (bot_id, _):
        token = telegram_emulator.world.bots[bot_id].token
        bot = make_bot(telegram_emulator, token)
        try:
            info = await bot.get_webhook_info()
            assert info.url.endswith("/tg")
            assert info.pending_update_count == 0
            try:
                await bot.get_updates()
            except Exception as error:  # aiogram's TelegramConflictError
                assert "webhook is active" in str(error)
            else:  # pragma: no cover
                raise AssertionError("getUpdates must conflict with an active webhook")
        finally:
            await bot.session.close()
