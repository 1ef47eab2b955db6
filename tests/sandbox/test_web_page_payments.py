"""The web page shows an invoice with Pay and Decline card, in headless Chromium (issue 19)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery

from sandbox.telegram import TelegramEmulator, TelegramSandbox
from tests.support.sandbox_web import ARTIFACTS, waiter

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def shop(paid: list[str]) -> Dispatcher:
    router = Router()

    @router.message(F.text == "/buy")
    async def buy(message: Message, bot: Bot) -> None:
        await bot.send_invoice(
            message.chat.id,
            title="Deposit",
            description="Haircut, Tue 8 Jan 10:00",
            payload="dep:1",
            provider_token="381764678:TEST:web-page",
            currency="RUB",
            prices=[LabeledPrice(label="Deposit", amount=50000)],
            provider_data=json.dumps({"receipt": {"items": []}}),
        )

    @router.pre_checkout_query()
    async def check(query: PreCheckoutQuery) -> None:
        await query.answer(ok=True)

    @router.message(F.successful_payment)
    async def done(message: Message) -> None:
        assert message.successful_payment is not None
        paid.append(message.successful_payment.telegram_payment_charge_id)
        await message.answer("Thank you, paid")

    dp = Dispatcher()
    dp.include_router(router)
    return dp


def pay_in_browser(driver: WebDriver, *, url: str) -> None:
    from selenium.webdriver.common.by import By

    wait = waiter(driver)
    css = driver.find_element
    driver.get(url)
    card = wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".invoice"), "the invoice card")[0]
    assert "Deposit" in card.text and "500.00 RUB" in card.text
    # Decline card: the bot approved the order, the card was refused, nothing was charged
    css(By.CSS_SELECTOR, ".invoice-decline").click()
    wait(lambda d: "declined" in css(By.ID, "toast-text").text, "the decline")
    assert not driver.find_elements(By.CSS_SELECTOR, ".invoice-state.paid")
    css(By.CSS_SELECTOR, ".invoice-pay").click()
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".invoice-state.paid"), "the invoice paid")
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".payment-receipt"), "the payment message")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], "the page logged errors"
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "sandbox-web-invoice.png"))
    driver.get("about:blank")


async def test_invoice_paid_and_declined_on_the_web_page(
    browser: WebDriver,
    telegram_emulator: TelegramEmulator,
    telegram_sandbox: TelegramSandbox,
    polling_bot: Any,
) -> None:
    paid: list[str] = []
    async with polling_bot(shop(paid)) as (_, bot_id):
        user = await telegram_sandbox.user(bot_id=bot_id, first_name="Ann")
        await user.send("/buy")
        await user.wait_for_bot_message(lambda m: m["invoice"] is not None)
        url = f"{telegram_emulator.web_url}#user={user.id}&bot={bot_id}"
        await asyncio.to_thread(pay_in_browser, browser, url=url)
        await user.wait_for_bot_message(lambda m: m["text"] == "Thank you, paid")
    assert len(paid) == 1
