"""A real aiogram 3 bot in polling mode against the emulator."""

from __future__ import annotations

import asyncio

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from sandbox.telegram import TelegramEmulator, TelegramSandbox


async def test_command_inline_button_edit_and_callback_answer(polling_bot, telegram_sandbox):
    async with polling_bot() as (_bot, bot_id):
        ann = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
        welcome = await ann.ask("/start")
        assert welcome["text"] == "Welcome! Pick a slot:"
        assert welcome["entities"] == [{"offset": 0, "length": 8, "type": "bold"}]
        assert [b["text"] for row in welcome["inline_keyboard"] for b in row] == ["Book", "Site"]

        query_id = await ann.click("Book")
        assert (await ann.callback_answer(query_id))["text"] == "Booked 10:00"
        edited = await ann.wait_answer()
        assert edited["message_id"] == welcome["message_id"]
        assert edited["text"] == "Booked for 10:00"
        assert edited["edited"] is True
        assert edited["inline_keyboard"] == []  # editing text without markup drops the keyboard

        info = await telegram_sandbox.bot(bot_id)
        assert info["commands"][0]["commands"] == [{"command": "start", "description": "Start"}]


async def test_fsm_reply_keyboard_and_contact(polling_bot, telegram_sandbox):
    async with polling_bot() as (_bot, bot_id):
        bob = await telegram_sandbox.user(
            bot_id=bot_id, first_name="Bob", phone_number="+79990001122"
        )
        assert (await bob.ask("/signup"))["text"] == "What is your name?"
        assert (await bob.ask("Bob")).get("text") == "Nice to meet you, Bob! Share your phone?"
        assert await bob.reply_keyboard() == ["Share phone"]
        await bob.press("Share phone")
        assert (await bob.wait_answer())["text"] == "Got +79990001122"
        assert await bob.reply_keyboard() == []
        messages = await bob.messages()
        assert messages[-2]["contact"]["phone_number"] == "+79990001122"


async def test_document_is_readable_by_the_user(polling_bot, telegram_sandbox):
    async with polling_bot() as (_bot, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id)
        message = await user.ask("/doc")
        assert message["caption"] == "Today's bookings"
        assert message["document"]["file_name"] == "bookings.csv"
        assert message["document"]["mime_type"] == "text/csv"
        assert await user.download(message) == b"date,client\n2024-05-01,Ann\n"


async def test_bad_html_is_rejected_like_telegram(polling_bot, telegram_sandbox):
    async with polling_bot() as (_bot, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id)
        answer = await user.ask("/broken")
        assert answer["text"] == (
            "error: Bad Request: can't parse entities: "
            'Can\'t find end tag corresponding to start tag "b"'
        )


class RetryAfterMiddleware(BaseRequestMiddleware):
    """aiogram has no automatic 429 retry; bots add a request middleware like this one."""

    def __init__(self) -> None:
        self.retried: list[int] = []

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for _ in range(3):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                self.retried.append(error.retry_after)
                await asyncio.sleep(error.retry_after)
        return await make_request(bot, method)


async def test_429_is_seen_by_aiogram_and_retrying_after_retry_after_works(
    polling_bot, telegram_sandbox: TelegramSandbox, telegram_emulator: TelegramEmulator
):
    async with polling_bot() as (bot, bot_id):
        retry = RetryAfterMiddleware()
        bot.session.middleware(retry)
        user = await telegram_sandbox.user(bot_id=bot_id)
        await user.ask("hello")  # starts the chat
        await telegram_sandbox.set_rate_limits(per_chat_per_second=1, per_chat_burst=1)
        first = await bot.send_message(user.id, "one")
        second = await bot.send_message(user.id, "two")  # over the per-chat limit -> 429 -> retry
        assert retry.retried == [1]
        assert second.message_id == first.message_id + 1
        texts = [m["text"] for m in await user.messages()]
        assert texts[-2:] == ["one", "two"]


async def test_blocked_user_gives_forbidden(polling_bot, telegram_sandbox):
    async with polling_bot() as (bot, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id)
        await user.ask("/start")
        await user.block()
        try:
            await bot.send_message(user.id, "still there?")
        except TelegramForbiddenError as error:
            assert error.message == "Forbidden: bot was blocked by the user"
        else:  # pragma: no cover - the emulator must refuse
            raise AssertionError("a blocked user must not receive messages")
        assert (await user.ask("/start"))["text"] == "Welcome! Pick a slot:"  # restart unblocks
