"""The whole purchase through the sales bot, against the Telegram emulator and the YooKassa
stand-in over HTTP: /start -> plan -> name -> token -> pay -> notification -> provision job ->
"your bot is live"."""

from __future__ import annotations

import asyncpg

from fleet.repositories.events import insert_event
from fleet.repositories.plans import PlanRepository
from sandbox.telegram import TelegramSandbox
from sandbox.testing import bot_id_of, new_bot_token
from sandbox.yookassa import YooKassaStandIn
from schemas.events import TenantLive
from templates import Texts
from tests.support.sales_bot_support import RunningSalesBot
from tests.support.sales_bot_support import buttons as _buttons
from tests.support.sales_bot_support import reply as _reply
from tests.support.sales_bot_support import url_buttons as _url_buttons

TEXTS = Texts("sales_bot")


async def _new_bot(telegram_sandbox: TelegramSandbox) -> tuple[str, str]:
    token = new_bot_token()
    username = f"barber{bot_id_of(token)}_bot"
    await telegram_sandbox.register_bot(token, username=username)
    return token, username


async def test_the_whole_purchase(
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
    welcome = await user.ask("/start")
    assert "botfleet" in welcome["text"] and "Plans and purchase" in _buttons(welcome)[0]

    await user.click("🛒 Plans and purchase")
    plans = await _reply(user, "Choose one")
    label = f"{plan['name']} · 990 ₽"
    assert label in _buttons(plans)

    await user.click(label)
    await _reply(user, "What is your business called")
    assert "@BotFather" in (await user.ask("Ivan's <Barbershop>"))["text"]

    # A malformed and an unknown token are refused with the reason.
    # The bot deletes the token message before it answers: wait for the answer itself.
    await user.send("hello")
    await _reply(user, "does not look like a bot token")
    await user.send(new_bot_token())
    await _reply(user, "does not know this token")

    token, username = await _new_bot(telegram_sandbox)
    await user.send(token)
    found = await _reply(user, f"@{username}")
    assert "Moscow (UTC+3)" in _buttons(found)
    texts = [m.get("text") or "" for m in await user.messages()]
    assert not any(token in text for text in texts)  # the token message was deleted

    await user.click("Moscow (UTC+3)")
    await _reply(user, "language")
    await user.click("English")
    await _reply(user, "Renew automatically")
    await user.click("No, I'll pay myself")
    pay = await _reply(user, "Press the button to pay")
    assert "990 ₽" in pay["text"] and f"@{username}" in pay["text"]
    [url] = _url_buttons(pay)

    tenant = await pool.fetchrow(
        "SELECT * FROM control.tenants WHERE bot_id = $1 AND deleted_at IS NULL", bot_id_of(token)
    )
    assert tenant["display_name"] == "Ivan's <Barbershop>"
    assert tenant["timezone"] == "Europe/Moscow" and tenant["locale"] == "en"
    assert tenant["owner_telegram_ids"] == [user.id] and tenant["status"] == "new"
    payment = await pool.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1", tenant["id"]
    )
    assert url == payment["confirmation_url"]

    # The owner pays on the stand-in; it notifies our webhook from YooKassa's network.
    yookassa_standin.succeed(payment["provider_payment_id"])
    await yookassa_standin.wait_notifications()
    jobs = await pool.fetch("SELECT kind FROM control.jobs WHERE tenant_id = $1", tenant["id"])
    assert [j["kind"] for j in jobs] == ["provision"]

    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 1
    received = await _reply(user, "Payment received: 990 ₽")
    assert f"@{username} is being set up" in received["text"]

    # The deploy worker reports the bot live (inserted as the worker does).
    await insert_event(
        pool,
        tenant_id=tenant["id"],
        event=TenantLive(bot_username=username, previous_status="provisioning"),
    )
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 1
    await _reply(user, f"Your bot @{username} is live")
    assert await sales_bot.outbox.deliver_once(tenant_ids=[tenant["id"]]) == 0

    # "My bots" shows it with its paid-until date and offers renewal.
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{tenant['id']}")
    card = await _reply(user, "Paid until: ")
    assert f"@{username}" in card["text"] and "Auto-renewal: off" in card["text"]
    assert "🔁 Renew" in _buttons(card)
    # No card was saved: turning auto-renewal on explains why it cannot.
    query_id = await user.click("Turn auto-renewal on")
    assert "No card is saved" in (await user.callback_answer(query_id))["text"]
    await user.click("🔁 Renew")
    renewal = await _reply(user, "Press the button to pay")
    assert _url_buttons(renewal) and _url_buttons(renewal) != [url]


async def test_token_in_use_is_refused(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    plan,
    make_order,
) -> None:
    token, username = await _new_bot(telegram_sandbox)
    await sales_bot.billing.checkout.purchase(
        make_order(owner=1, bot_token=token, bot_id=bot_id_of(token), bot_username=username)
    )
    user = await telegram_sandbox.user(
        bot_id=sales_bot.bot_id, first_name="Olga", language_code="ru"
    )
    await user.ask("/start")
    await user.click("🛒 Тарифы и покупка")
    await _reply(user, "за 30 дн.")
    await user.click(f"{plan['name']} · 990 ₽")
    await _reply(user, "Как называется ваш бизнес")
    await user.send("Салон Ольги")
    await _reply(user, "@BotFather")
    await user.send(token)
    await _reply(user, "уже подключён к botfleet")


async def test_outdated_buttons_are_answered_politely(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, pool: asyncpg.Pool, plan
) -> None:
    user = await telegram_sandbox.user(
        bot_id=sales_bot.bot_id, first_name="Ann", language_code="en"
    )
    await user.ask("/start")
    await user.click("🛒 Plans and purchase")
    plans = await _reply(user, "Choose one")
    # The plan is withdrawn while the list is on screen.
    await PlanRepository(pool).set_active(plan["code"], False)
    query_id = await user.click(f"{plan['name']} · 990 ₽", message_id=plans["message_id"])
    assert "outdated" in (await user.callback_answer(query_id))["text"]
    # A button of a conversation that /start has since reset.
    await PlanRepository(pool).set_active(plan["code"], True)
    await user.click(f"{plan['name']} · 990 ₽", message_id=plans["message_id"])
    await _reply(user, "What is your business called")
    await user.send("Ann's nails")
    token, _ = await _new_bot(telegram_sandbox)
    await _reply(user, "@BotFather")
    await user.send(token)
    zones = await _reply(user, "time zone")
    await user.ask("/start")
    query_id = await user.click("Moscow (UTC+3)", message_id=zones["message_id"])
    assert "outdated" in (await user.callback_answer(query_id))["text"]


def test_both_locales_define_every_text() -> None:
    assert TEXTS.missing() == {}
