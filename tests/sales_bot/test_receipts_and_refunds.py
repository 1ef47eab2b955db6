"""Receipts and refunds as an owner lives them (issue 18), through the sales bot on the Telegram
emulator and the YooKassa stand-in requiring receipts: a phone given for the receipt, the contact
changed in "My bots", a renewal whose receipt goes to the new contact, and the refund message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio

from fleet.billing.config import BillingConfig
from sandbox.telegram import TelegramSandbox
from sandbox.testing import bot_id_of, new_bot_token
from sandbox.yookassa import YooKassaStandIn
from tests.support.receipt_support import receipts_config, strict_standin
from tests.support.sales_bot_support import RunningSalesBot, buttons, reply, url_buttons


@pytest_asyncio.fixture
async def yookassa_standin() -> AsyncIterator[YooKassaStandIn]:
    async for standin in strict_standin():
        yield standin


@pytest.fixture
def billing_config() -> BillingConfig:
    return receipts_config()


async def test_phone_receipt_contact_change_renewal_and_refund(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    yookassa_standin: YooKassaStandIn,
    webhook,
    pool: asyncpg.Pool,
    plan,
) -> None:
    user = await telegram_sandbox.user(
        bot_id=sales_bot.bot_id, first_name="Ivan", language_code="en"
    )
    await user.ask("/start")
    await user.click("🛒 Plans and purchase")
    await reply(user, "Choose one")
    await user.click(f"{plan['name']} · 990 ₽")
    await reply(user, "What is your business called")
    await user.send("Ivan's barbershop")
    await reply(user, "@BotFather")
    token = new_bot_token()
    username = f"barber{bot_id_of(token)}_bot"
    await telegram_sandbox.register_bot(token, username=username)
    await user.send(token)
    await reply(user, "time zone")
    await user.click("Moscow (UTC+3)")
    await reply(user, "language")
    await user.click("English")
    await reply(user, "Renew automatically")
    await user.click("No, I'll pay myself")
    asked = await reply(user, "Send your e-mail or phone number")
    assert "receipt" in asked["text"]
    assert "neither an e-mail nor a phone" in (await user.ask("call me maybe"))["text"]
    await user.send("8 (900) 765-43-21")
    pay = await reply(user, "Press the button to pay")
    [url] = url_buttons(pay)

    tenant = await pool.fetchrow(
        "SELECT * FROM control.tenants WHERE bot_id = $1 AND deleted_at IS NULL", bot_id_of(token)
    )
    first = await pool.fetchrow("SELECT * FROM control.payments WHERE tenant_id = $1", tenant["id"])
    assert url == first["confirmation_url"]
    sent = yookassa_standin.ledger.payments[first["provider_payment_id"]].request.receipt
    assert sent is not None and sent["customer"] == {"phone": "79007654321"}
    yookassa_standin.succeed(first["provider_payment_id"])
    await yookassa_standin.wait_notifications()
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 1
    await reply(user, "Payment received: 990 ₽")

    # "My bots" -> receipt contact: shows where receipts go, refuses nonsense, takes an e-mail.
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{tenant['id']}")
    card = await reply(user, "Paid until: ")
    assert "🧾 Receipt e-mail or phone" in buttons(card)
    await user.click("🧾 Receipt e-mail or phone")
    current = await reply(user, "Send a new e-mail or phone number for receipts")
    assert "+79007654321" in current["text"]
    assert "neither an e-mail nor a phone" in (await user.ask("ivan@"))["text"]
    done = await user.ask("ivan@example.com")
    assert f"receipts for @{username} now go to ivan@example.com" in done["text"]

    # The owner renews: the renewal's receipt goes to the new contact.
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{tenant['id']}")
    await reply(user, "Paid until: ")
    await user.click("🔁 Renew")
    await reply(user, "Press the button to pay")
    renewal = await pool.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND purpose = 'renewal'",
        tenant["id"],
    )
    sent = yookassa_standin.ledger.payments[renewal["provider_payment_id"]].request.receipt
    assert sent is not None and sent["customer"] == {"email": "ivan@example.com"}

    # An operator refunds part of the first payment; the owner is told in their language.
    made = await sales_bot.billing.refunds.refund(
        first["id"], key="outage", actor="admin:test", amount=Decimal("300")
    )
    refund_receipt = yookassa_standin.ledger.refunds[made.provider_refund_id].receipt
    assert refund_receipt is not None
    assert refund_receipt["customer"] == {"phone": "79007654321"}  # the payment's own buyer
    await yookassa_standin.wait_notifications()  # refund.succeeded: a duplicate, changes nothing
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 1
    told = await reply(user, "We refunded 300 ₽ of your payment of 990 ₽")
    assert "Your subscription is unchanged" in told["text"]
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 0

    # The rest: the period it paid for is the current one, so the bot is stopped.
    await sales_bot.billing.refunds.refund(first["id"], key="rest", actor="admin:test")
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 1
    ended = await reply(user, "We refunded 690 ₽ of your payment of 990 ₽")
    assert "(990 ₽ refunded in all)" in ended["text"]
    assert "subscription has ended" in ended["text"] and "kept until" in ended["text"]

    # The owner's payment history shows what came back.
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{tenant['id']}")
    await reply(user, f"@{username}")
    await user.click("🧾 Payments")
    history = await reply(user, "Payments of @")
    [purchase] = [line for line in history["text"].split("\n") if "purchase" in line]
    assert "✅ paid" in purchase and "↩️ refunded 990 ₽" in purchase, purchase
