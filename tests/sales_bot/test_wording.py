"""What a buyer reads in the sales bot, through the Telegram emulator (issue 16, item 7).

An unpaid purchase is "awaiting payment" with a Pay button; a cancelled payment says why in words;
plans are named in the buyer's language; money reads "990 ₽" / "1 500 ₽" as in the tenant bots; time
zones read "Москва (UTC+3)"; the bad-token step can be cancelled.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from fleet.repositories.plans import PlanRepository
from kit.formats import money
from sandbox.telegram import TelegramSandbox
from sandbox.testing import bot_id_of, new_bot_token
from sandbox.yookassa import YooKassaStandIn
from templates import Texts
from tests.support.sales_bot_support import RunningSalesBot
from tests.support.sales_bot_support import buttons as _buttons
from tests.support.sales_bot_support import reply as _reply

TEXTS = Texts("sales_bot")

# Every cancellation_details.reason YooKassa documents
# (https://yookassa.ru/developers/payments/declined-payments), and ours.
YOOKASSA_REASONS = (
    "3d_secure_failed",
    "call_issuer",
    "canceled_by_merchant",
    "card_expired",
    "country_forbidden",
    "deal_expired",
    "expired_on_capture",
    "expired_on_confirmation",
    "fraud_suspected",
    "general_decline",
    "identification_required",
    "insufficient_funds",
    "internal_timeout",
    "invalid_card_number",
    "invalid_csc",
    "issuer_unavailable",
    "payment_method_limit_exceeded",
    "payment_method_restricted",
    "permission_revoked",
    "unsupported_mobile_operator",
)
OUR_REASONS = ("abandoned",)


async def _person(sandbox: TelegramSandbox, bot_id: int, name: str, locale: str) -> Any:
    """A user of an id of this test alone (owners' languages are kept by Telegram id)."""
    return await sandbox.user(
        bot_id=bot_id,
        first_name=name,
        language_code=locale,
        id=3 * 10**9 + secrets.randbelow(10**9),
    )


async def _buy_unpaid(sales_bot: RunningSalesBot, make_order: Any, owner: int) -> Any:
    return await sales_bot.billing.checkout.purchase(make_order(owner=owner))


@pytest.mark.parametrize("locale", ["en", "ru"])
async def test_unpaid_purchase_is_awaiting_payment_with_a_pay_button(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    yookassa_standin: YooKassaStandIn,
    webhook: Any,
    make_order: Any,
    pool: asyncpg.Pool,
    locale: str,
) -> None:
    user = await _person(telegram_sandbox, sales_bot.bot_id, "Ivan", locale)
    checkout = await _buy_unpaid(sales_bot, make_order, user.id)
    waiting = TEXTS(locale, "status_label", status="new")
    pay, renew = TEXTS(locale, "button_pay_now"), TEXTS(locale, "button_renew")

    async def card() -> dict[str, Any]:
        listing = await user.ask("/mybots")
        [label] = [b for b in _buttons(listing) if b.startswith("@")]
        assert label.endswith(f"· {waiting}"), label
        await user.click(text=None, data=f"b:show:{checkout.tenant_id}")
        return await _reply(user, waiting)

    shown = await card()
    assert pay in _buttons(shown) and renew not in _buttons(shown), _buttons(shown)
    assert TEXTS(locale, "status_label", status="suspended") not in shown["text"]

    # The first attempt is cancelled: still unpaid, still "awaiting payment", still "Pay".
    payment = await pool.fetchrow(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", checkout.payment_id
    )
    yookassa_standin.cancel(payment["provider_payment_id"], reason="expired_on_confirmation")
    await yookassa_standin.wait_notifications()
    shown = await card()
    assert pay in _buttons(shown) and renew not in _buttons(shown), _buttons(shown)


@pytest.mark.parametrize(
    ("locale", "reason", "words"),
    [
        ("ru", "insufficient_funds", "на карте не хватило денег"),
        ("en", "expired_on_confirmation", "the payment was not confirmed in time"),
    ],
)
async def test_a_cancelled_payment_says_why_in_words(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    yookassa_standin: YooKassaStandIn,
    webhook: Any,
    make_order: Any,
    pool: asyncpg.Pool,
    locale: str,
    reason: str,
    words: str,
) -> None:
    user = await _person(telegram_sandbox, sales_bot.bot_id, "Ivan", locale)
    await user.ask("/start")  # the owner's language is what their app says
    checkout = await sales_bot.billing.checkout.purchase(make_order(owner=user.id, locale=locale))
    payment = await pool.fetchrow(
        "SELECT provider_payment_id FROM control.payments WHERE id = $1", checkout.payment_id
    )
    yookassa_standin.cancel(payment["provider_payment_id"], reason=reason)
    await yookassa_standin.wait_notifications()
    assert await sales_bot.outbox.deliver_once(tenant_ids=[checkout.tenant_id]) == 1
    notice = await _reply(user, "❌")
    assert words in notice["text"] and reason not in notice["text"], notice["text"]
    assert money(990, "RUB") in notice["text"]


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_every_cancellation_reason_reads_as_a_sentence(locale: str) -> None:
    generic = TEXTS(locale, "cancellation_reason", code="no_such_reason")
    seen = set()
    for code in YOOKASSA_REASONS + OUR_REASONS:
        text = TEXTS(locale, "cancellation_reason", code=code)
        assert text != generic, f"{code} has no words of its own in {locale}"
        assert "_" not in text and code not in text, text
        seen.add(text)
    assert len(seen) == len(YOOKASSA_REASONS + OUR_REASONS)
    rendered = TEXTS(
        locale,
        "event_payment_canceled",
        bot="shop_bot",
        p={"amount": "990 ₽", "reason": "expired_on_confirmation"},
    )
    assert "expired_on_confirmation" not in rendered


async def test_plans_are_named_in_the_buyers_language_and_priced_alike(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, pool: asyncpg.Pool, plan: Any
) -> None:
    await PlanRepository(pool).update(
        plan["code"],
        price=Decimal("1500.00"),
        translations={
            "ru": {"name": f"Месяц {plan['code']}", "description": "Всё включено"},
            "en": {"name": f"Month {plan['code']}", "description": None},
        },
    )
    price = money(1500, "RUB")
    assert price == "1\u202f500 ₽"
    for locale, name, described in (
        ("ru", f"Месяц {plan['code']}", "Всё включено"),
        ("en", f"Month {plan['code']}", None),
    ):
        user = await _person(telegram_sandbox, sales_bot.bot_id, "Ivan", locale)
        await user.ask("/start")
        await user.click(TEXTS(locale, "button_buy"))
        plans = await _reply(user, TEXTS(locale, "plans", items=[]).split("\n")[-1])
        assert f"{name} · {price}" in _buttons(plans), _buttons(plans)
        assert f"{name} — {price}" in plans["text"], plans["text"]
        if described:
            assert (
                f"{name} — {price}" + TEXTS(locale, "plans", items=[]).split("\n")[0]
                not in (plans["text"])
            )
            assert described in plans["text"]
        await user.click(f"{name} · {price}")
        asked = await _reply(user, name)
        assert plan["name"] not in asked["text"]


async def _to_token_step(user: Any, plan: Any) -> None:
    """/start -> plans -> this test's plan -> business name, in Russian: the bot asks for a token."""
    await user.ask("/start")
    await user.click("🛒 Тарифы и покупка")
    plans = await _reply(user, "за 30 дн.")
    [label] = [b for b in _buttons(plans) if b.startswith(f"{plan['name']} · ")]
    await user.click(label)
    await _reply(user, "Как называется ваш бизнес")
    await user.send("Салон Ольги")
    await _reply(user, "@BotFather")


async def test_the_bad_token_steps_have_a_cancel_button(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, plan: Any, make_order: Any
) -> None:
    cancel = TEXTS("ru", "button_cancel")
    user = await _person(telegram_sandbox, sales_bot.bot_id, "Olga", "ru")
    await _to_token_step(user, plan)
    for wrong in ("hello", new_bot_token()):  # malformed, and unknown to Telegram
        refused = await user.ask(wrong)
        assert _buttons(refused) == [cancel], refused
    await user.click(cancel)
    await _reply(user, TEXTS("ru", "cancelled").split(".")[0])

    # Changing the token in "My bots" too.
    checkout = await sales_bot.billing.checkout.purchase(make_order(owner=user.id))
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{checkout.tenant_id}")
    await _reply(user, "Оплачен до")
    await user.click(TEXTS("ru", "button_change_token"))
    await _reply(user, "Пришлите новый токен")
    refused = await user.ask("hello")
    assert _buttons(refused) == [cancel], refused
    await user.click(cancel)
    await _reply(user, TEXTS("ru", "cancelled").split(".")[0])


async def test_time_zones_read_as_cities(
    sales_bot: RunningSalesBot, telegram_sandbox: TelegramSandbox, plan: Any, make_order: Any
) -> None:
    user = await _person(telegram_sandbox, sales_bot.bot_id, "Olga", "ru")
    await _to_token_step(user, plan)
    token = new_bot_token()
    await telegram_sandbox.register_bot(token, username=f"olga{bot_id_of(token)}_bot")
    await user.send(token)
    zones = await _reply(user, "часовом поясе")
    labels = [b for b in _buttons(zones) if b != TEXTS("ru", "button_cancel")]
    assert "Москва (UTC+3)" in labels and "Екатеринбург (UTC+5)" in labels, labels
    assert not any("/" in label for label in labels), labels
    # A city typed by name is understood, in any case.
    assert "язык" in (await user.ask("екатеринбург"))["text"]

    # "My bots" names the business's zone the same way.
    checkout = await sales_bot.billing.checkout.purchase(
        make_order(owner=user.id, timezone="Asia/Yekaterinburg")
    )
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{checkout.tenant_id}")
    card = await _reply(user, "@")
    assert "Часовой пояс: Екатеринбург (UTC+5)" in card["text"].split("\n"), card["text"]
