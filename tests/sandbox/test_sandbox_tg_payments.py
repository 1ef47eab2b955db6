"""Telegram Payments in the emulator, driven by a real aiogram bot: invoices, the provider token
check, pre-checkout answers within Telegram's 10 seconds, successful_payment, links, repeats."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from sandbox.telegram.client import SandboxError

TOKEN = "381764678:TEST:100500"


def shop(*, approve: bool = True, delay: float = 0.0) -> tuple[Dispatcher, list[dict[str, Any]]]:
    """A bot that sells one thing: /buy sends an invoice, pre-checkout is answered after ``delay``."""
    seen: list[dict[str, Any]] = []
    router = Router()

    @router.message(F.text == "/buy")
    async def buy(message: Message, bot: Bot) -> None:
        await bot.send_invoice(
            message.chat.id,
            title="Deposit",
            description="Haircut on Monday",
            payload="booking:42",
            provider_token=TOKEN,
            currency="RUB",
            prices=[LabeledPrice(label="Deposit", amount=50000)],
            provider_data=json.dumps({"receipt": {"items": []}}),
        )

    @router.pre_checkout_query()
    async def check(query: PreCheckoutQuery) -> None:
        seen.append({"pre_checkout": query.invoice_payload, "total": query.total_amount})
        await asyncio.sleep(delay)
        if approve:
            await query.answer(ok=True)
        else:
            await query.answer(ok=False, error_message="The time is gone")

    @router.message(F.successful_payment)
    async def paid(message: Message) -> None:
        assert message.successful_payment is not None
        seen.append({"paid": message.successful_payment.telegram_payment_charge_id})

    dp = Dispatcher()
    dp.include_router(router)
    return dp, seen


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def test_invoice_paid_after_the_bot_approves(polling_bot, telegram_sandbox: TelegramSandbox):
    dp, seen = shop()
    async with polling_bot(dp) as (_, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
        await user.send("/buy")
        invoice = await user.wait_for_bot_message(lambda m: m["invoice"] is not None)
        assert invoice["invoice"]["total_amount"] == 50000
        assert invoice["invoice"]["state"] == "open"
        result = await user.pay()
        assert result["status"] == "paid"
        await _until(lambda: any("paid" in s for s in seen))
        assert seen[0] == {"pre_checkout": "booking:42", "total": 50000}
        assert seen[1]["paid"] == result["successful_payment"]["telegram_payment_charge_id"]
        shown = [m for m in await user.messages() if m["message_id"] == invoice["message_id"]]
        assert shown[0]["invoice"]["state"] == "paid"
        with pytest.raises(SandboxError) as again:  # an invoice is paid once
            await user.pay(invoice["message_id"])
        assert again.value.status == 409
        # a repeated delivery of the payment reaches the bot again, as Telegram may repeat it
        await telegram_sandbox.deliver_again(bot_id=bot_id, update_id=result["update_id"])
        await _until(lambda: sum("paid" in s for s in seen) == 2)


async def test_refusal_and_card_decline_charge_nothing(polling_bot, telegram_sandbox):
    dp, seen = shop(approve=False)
    async with polling_bot(dp) as (_, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
        await user.send("/buy")
        await user.wait_for_bot_message(lambda m: m["invoice"] is not None)
        refused = await user.pay()
        assert refused["status"] == "refused"
        assert refused["error_message"] == "The time is gone"
        assert (await user.pay(outcome="cancel"))["status"] == "cancelled"
    dp, seen = shop()
    async with polling_bot(dp) as (_, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id, first_name="Bob")
        await user.send("/buy")
        await user.wait_for_bot_message(lambda m: m["invoice"] is not None)
        declined = await user.pay(outcome="declined")
        assert declined["status"] == "declined"
        await asyncio.sleep(0.2)
        assert not any("paid" in s for s in seen)  # the bot hears of no payment


async def test_a_late_answer_fails_the_payment(telegram_sandbox: TelegramSandbox):
    from sandbox.telegram.world import EmulatorConfig
    from sandbox.testing import bot_id_of, make_bot, new_bot_token

    config = EmulatorConfig(pre_checkout_timeout=0.3)  # Telegram's 10 s, shortened
    async with (
        TelegramEmulator.start(config=config) as emulator,
        TelegramSandbox(emulator.base_url) as control,
    ):
        token = new_bot_token()
        await control.register_bot(token, username=f"slow{bot_id_of(token)}_bot")
        bot = make_bot(emulator, token)
        dp, seen = shop(delay=0.6)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
        try:
            user = await control.user(bot_id=bot_id_of(token), first_name="Ann")
            await user.send("/buy")
            await user.wait_for_bot_message(lambda m: m["invoice"] is not None)
            result = await user.pay()
            assert result["status"] == "timeout"
            await asyncio.sleep(0.5)  # the bot's late answer is refused as "too old"
            assert not any("paid" in s for s in seen)
        finally:
            await dp.stop_polling()
            await task
            await bot.session.close()


async def test_provider_token_and_invoice_checked_like_telegram(
    polling_bot, telegram_sandbox: TelegramSandbox
):
    dp, _ = shop()
    async with polling_bot(dp) as (bot, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
        await user.send("/start")
        price = [LabeledPrice(label="x", amount=100)]
        common: dict[str, Any] = {
            "title": "T",
            "description": "D",
            "payload": "p",
            "currency": "RUB",
            "prices": price,
        }
        for token in ("", "not-a-token", "12345:LIVE", "1:PROD:abcd"):
            with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
                await bot.send_invoice(user.id, provider_token=token, **common)
        with pytest.raises(TelegramBadRequest, match="CURRENCY_TOTAL_AMOUNT_INVALID"):
            await bot.send_invoice(
                user.id,
                provider_token=TOKEN,
                **{**common, "prices": [LabeledPrice(label="x", amount=0)]},
            )
        with pytest.raises(TelegramBadRequest, match="INVOICE_PAYLOAD_INVALID"):
            await bot.send_invoice(
                user.id, provider_token=TOKEN, **{**common, "payload": "x" * 129}
            )
        link = await bot.create_invoice_link(provider_token="1:LIVE:abcdef", **common)
        assert link.startswith("https://t.me/$")
        shown = await user.open_invoice_link(link)
        assert shown["invoice"]["total_amount"] == 100
        with pytest.raises(TelegramBadRequest, match="too old"):
            await bot.answer_pre_checkout_query("12345", ok=True)
