"""Issue 18 in the sales bot, end to end over the Telegram emulator and the YooKassa stand-in (HTTP,
its notifications to our webhook): consent to auto-renewal in words before the card is saved, the
reminder with amount, date and how to cancel, one tap to cancel, consent again to turn it back on,
a failed charge with a "pay by hand" button, changing plans (upgrade paid through the checkout,
downgrade scheduled, double taps), and the payment history with pages."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg

from fleet.repositories.plans import PlanRepository
from fleet.secrets import SecretBox
from kit.formats import money
from sandbox.telegram import TelegramSandbox
from sandbox.testing import bot_id_of, new_bot_token
from sandbox.yookassa import YooKassaStandIn
from tests.support.billing_fixtures import FakeClock, _cleanup_plan
from tests.support.sales_bot_support import RunningSalesBot
from tests.support.sales_bot_support import buttons as _buttons
from tests.support.sales_bot_support import reply as _reply
from tests.support.sales_bot_support import url_buttons as _url_buttons


async def _buy_with_consent(
    user, telegram_sandbox: TelegramSandbox, plan: asyncpg.Record
) -> tuple[str, str]:
    """The purchase flow, agreeing to automatic renewal; returns the bot's username and token."""
    token = new_bot_token()
    username = f"shop{bot_id_of(token)}_bot"
    await telegram_sandbox.register_bot(token, username=username)
    await user.ask("/start")
    await user.click("🛒 Plans and purchase")
    await _reply(user, "Choose one")
    await user.click(f"{plan['name']} · 990 ₽")
    await _reply(user, "What is your business called")
    await user.send("Ivan's Barbershop")
    await _reply(user, "@BotFather")
    await user.send(token)
    await _reply(user, "time zone")
    await user.click("Moscow (UTC+3)")
    await _reply(user, "language")
    await user.click("English")
    offer = await _reply(user, "Renew automatically?")
    # The consent is asked in words: the amount, the period and how to cancel.
    assert "990 ₽" in offer["text"]
    assert "30 days" in offer["text"] and "Turn auto-renewal off" in offer["text"]
    assert _buttons(offer) == ["✅ I agree: 990 ₽ every 30 days", "No, I'll pay myself"]
    await user.click("✅ I agree: 990 ₽ every 30 days")
    await _reply(user, "Press the button to pay")
    return username, token


async def _pay_latest(
    pool: asyncpg.Pool, standin: YooKassaStandIn, tenant_id: int
) -> asyncpg.Record:
    payment = await pool.fetchrow(
        "SELECT * FROM control.payments WHERE tenant_id = $1 AND status = 'pending'"
        " ORDER BY created_at DESC LIMIT 1",
        tenant_id,
    )
    standin.succeed(payment["provider_payment_id"])
    await standin.wait_notifications()
    return payment


async def test_honest_auto_renewal(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    yookassa_standin: YooKassaStandIn,
    webhook,
    pool: asyncpg.Pool,
    plan,
    secret_box: SecretBox,
    clock: FakeClock,
) -> None:
    user = await telegram_sandbox.user(
        bot_id=sales_bot.bot_id, first_name="Ivan", language_code="en"
    )
    _, token = await _buy_with_consent(user, telegram_sandbox, plan)
    tenant = await pool.fetchrow(
        "SELECT * FROM control.tenants WHERE bot_id = $1 AND deleted_at IS NULL", bot_id_of(token)
    )
    tid = tenant["id"]
    payment = await _pay_latest(pool, yookassa_standin, tid)
    consent = payment["autopay_consent"]
    assert consent["amount"] == "990.00" and consent["period_days"] == 30
    assert consent["currency"] == "RUB" and "Turn auto-renewal off" in consent["cancel"]
    assert consent["agreed_at"] == clock.now.isoformat()
    sub = await pool.fetchrow("SELECT * FROM control.subscriptions WHERE tenant_id = $1", tid)
    assert sub["auto_renew"] and sub["payment_method_id_enc"] and sub["autopay_consent"] == consent
    end = sub["current_period_end"]

    # The card states the terms; cancelling is one tap, and says what happens next.
    await user.ask("/mybots")
    await user.click(text=None, data=f"b:show:{tid}")
    card = await _reply(user, "Next automatic charge: 990 ₽ for 30 days")
    assert "Auto-renewal: on" in card["text"]
    await user.click("Turn auto-renewal off")
    off = await _reply(user, "Auto-renewal: off")  # the card again, after the explanation
    chat = [m["text"] for m in await user.messages() if m["from"] == "bot"]
    assert any("is off: we will not charge your card again" in t for t in chat[-2:])
    assert "Turn auto-renewal on" in _buttons(off)
    assert not await pool.fetchval(
        "SELECT auto_renew FROM control.subscriptions WHERE tenant_id = $1", tid
    )

    # Turning it back on asks for consent to the terms again, and records it with its time.
    clock.advance(hours=1)
    await user.click("Turn auto-renewal on")
    terms = await _reply(user, "Turn auto-renewal of")
    assert "990 ₽" in terms["text"] and "every <b>30 days</b>" not in terms["text"]
    assert "30 days" in terms["text"] and "Turn auto-renewal off" in terms["text"]
    await user.click("✅ I agree: 990 ₽ every 30 days")
    await _reply(user, "Auto-renewal: on")
    sub = await pool.fetchrow("SELECT * FROM control.subscriptions WHERE tenant_id = $1", tid)
    assert sub["auto_renew"] and sub["autopay_consent"]["agreed_at"] == clock.now.isoformat()
    actions = await pool.fetch(
        "SELECT details FROM control.audit_log WHERE target = $1"
        " AND action = 'subscription.auto_renew' ORDER BY id",
        tenant["slug"],
    )
    assert [a["details"]["enabled"] for a in actions] == [False, True]

    # The reminder before the charge: the amount, the date, the card, how to cancel, and a button.
    await sales_bot.billing.lifecycle.run_once(end - timedelta(days=3), tenant_ids=[tid])
    await sales_bot.outbox.deliver_once(tenant_ids=[tid])
    await sales_bot.outbox.deliver_once(tenant_ids=[tid])
    charge_day = (end - timedelta(days=1)).astimezone(tenant_zone()).strftime("%d.%m.%Y")
    reminder = await _reply(user, "we will charge")
    assert f"On {charge_day} we will charge 990 ₽ to Bank card" in reminder["text"]
    assert "30 days" in reminder["text"] and "Turn auto-renewal off" in reminder["text"]
    assert _buttons(reminder) == ["Turn auto-renewal off"]

    # The card is revoked at the bank: the charge fails, and the owner is told what to do.
    method_id = secret_box.decrypt(sub["payment_method_id_enc"])
    yookassa_standin.ledger.saved_methods.pop(method_id)
    report = await sales_bot.billing.lifecycle.run_once(end - timedelta(hours=12), tenant_ids=[tid])
    assert report.charged == 1
    await sales_bot.outbox.deliver_once(tenant_ids=[tid])
    # The 1-day reminder falls due in the same run: it no longer promises a charge.
    last = await _reply(user, "Renew to keep it running: 990 ₽ for 30 days")
    assert _buttons(last) == ["🔁 Renew"]
    [failed] = [m for m in await user.messages() if "could not renew" in (m.get("text") or "")]
    paid_until = end.astimezone(tenant_zone()).strftime("%d.%m.%Y")
    stops = (end + timedelta(days=3)).astimezone(tenant_zone()).strftime("%d.%m.%Y")
    assert f"before {paid_until}" in failed["text"] and f"stops on {stops}" in failed["text"]
    assert "Nothing was charged" in failed["text"]
    assert _buttons(failed) == ["💳 Pay by hand"]
    await user.click("💳 Pay by hand")
    pay = await _reply(user, "Press the button to pay")
    assert _url_buttons(pay)


def tenant_zone() -> ZoneInfo:
    return ZoneInfo("Europe/Moscow")


async def test_change_plan_and_payment_history(
    sales_bot: RunningSalesBot,
    telegram_sandbox: TelegramSandbox,
    yookassa_standin: YooKassaStandIn,
    webhook,
    pool: asyncpg.Pool,
    plan,
    make_order,
    clock: FakeClock,
) -> None:
    pro_code = "p" + secrets.token_hex(5)
    await PlanRepository(pool).insert(
        code=pro_code, name=f"Pro {pro_code}", price=Decimal("1990.00"), period_days=30
    )
    try:
        user = await telegram_sandbox.user(
            bot_id=sales_bot.bot_id, first_name="Olga", language_code="en"
        )
        await user.ask("/start")
        checkout = await sales_bot.billing.checkout.purchase(make_order(owner=user.id, locale="en"))
        tid = checkout.tenant_id
        await _pay_latest(pool, yookassa_standin, tid)
        # Half the period used (moved back in time rather than the clock forward: checkouts are
        # stamped by the database): 495 ₽ credited.
        await pool.execute(
            "UPDATE control.subscriptions SET current_period_start = current_period_start"
            " - interval '15 days', current_period_end = current_period_end - interval '15 days'"
            " WHERE tenant_id = $1",
            tid,
        )

        await user.ask("/mybots")
        await user.click(text=None, data=f"b:show:{tid}")
        await _reply(user, "Paid until")
        await user.click("🔀 Change plan")
        menu = await _reply(user, "Choose a plan")
        assert f"✓ {plan['name']} · 990 ₽ / 30 days" in _buttons(menu)
        await user.click(f"Pro {pro_code} · {money(1990)} / 30 days")
        quote = await _reply(user, "starts as soon as you pay")
        assert "credited: 495 ₽" in quote["text"]
        assert f"To pay now: {money(1495)}" in quote["text"]
        # A double tap on the confirmation: one payment, the same checkout.
        await asyncio.gather(
            user.click(f"✅ Switch and pay {money(1495)}"),
            user.click(f"✅ Switch and pay {money(1495)}"),
        )
        pay = await _reply(user, "to pay (the unused time is already taken off)")
        await asyncio.sleep(0.3)
        pay_messages = [
            m
            for m in await user.messages()
            if "the unused time is already taken off" in (m.get("text") or "")
        ]
        assert len({_url_buttons(m)[0] for m in pay_messages}) == 1
        upgrades = await pool.fetch(
            "SELECT * FROM control.payments WHERE tenant_id = $1 AND purpose = 'upgrade'", tid
        )
        assert len(upgrades) == 1 and upgrades[0]["amount"] == Decimal("1495.00")
        assert _url_buttons(pay) == [upgrades[0]["confirmation_url"]]
        await _pay_latest(pool, yookassa_standin, tid)
        sub = await pool.fetchrow("SELECT * FROM control.subscriptions WHERE tenant_id = $1", tid)
        assert sub["plan_code"] == pro_code
        assert sub["current_period_end"] == clock.now + timedelta(days=30)

        # Back to the cheaper plan: from the end of the paid time; the card says so.
        await user.click("🔀 Change plan")
        await _reply(user, "Choose a plan")
        await user.click(f"{plan['name']} · 990 ₽ / 30 days")
        end_day = sub["current_period_end"].astimezone(tenant_zone()).strftime("%d.%m.%Y")
        quote = await _reply(user, f"starts on {end_day}")
        await user.click(f"✅ Switch on {end_day}")
        await _reply(user, f"Done: {plan['name']} starts on {end_day}")
        await user.click(text=None, data=f"b:show:{tid}")
        card = await _reply(user, "Paid until")
        assert f'From {end_day}: plan "{plan["name"]}" (990 ₽)' in card["text"]

        # The history: every payment with date, amount, status, what for; pages when long.
        paid_day = clock.now.astimezone(tenant_zone()).strftime("%d.%m.%Y")
        for _ in range(8):
            await sales_bot.billing.checkout.renew(tenant_id=tid, owner_telegram_id=user.id)
            clock.advance(hours=1)  # past the reuse of an open checkout: a new payment each
        await pool.execute(
            "UPDATE control.payments SET status = 'canceled', cancellation_reason = 'expired_on_confirmation'"
            " WHERE tenant_id = $1 AND status = 'pending'",
            tid,
        )
        await user.click("🧾 Payments")
        history = await _reply(user, "Payments of @")
        lines = history["text"].split("\n")[1:]
        assert len(lines) == 8
        assert all("990 ₽ · ❌ not paid · renewal" in line for line in lines)
        assert all("the payment was not confirmed in time" in line for line in lines)
        assert "Older »" in _buttons(history)
        await user.click("Older »")
        older = await _reply(user, "(page 2)")
        assert older["text"].split("\n")[1:] == [
            f"{paid_day} · {money(1495)} · ✅ paid · plan upgrade, Pro {pro_code}",
            f"{paid_day} · 990 ₽ · ✅ paid · purchase, {plan['name']}",
        ]
        assert "« Newer" in _buttons(older)
    finally:
        await pool.execute(
            "DELETE FROM control.tenants WHERE id IN (SELECT tenant_id FROM control.subscriptions"
            " WHERE plan_code = $1 OR scheduled_plan_code = $1)",
            pro_code,
        )
        await _cleanup_plan(pool, pro_code)
