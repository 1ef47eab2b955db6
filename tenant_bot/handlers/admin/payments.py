"""The owner's deposits set-up (issue 19): the provider token, the hold, receipts, the cancellation
policy, and each service's deposit rule. Reached from Settings."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

from aiogram import F
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import DepositKind, DepositRule, PaymentSettings, Service
from tenant_bot.callbacks import Admin, PaySetting
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu, change_or_explain
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.payments import Payments
from tenant_bot.texts import BotTexts

log = logging.getLogger(__name__)
routes = Routes("admin_payments")

# the form BotFather gives: <digits>:TEST:<key> or <digits>:LIVE:<key>
PROVIDER_TOKEN = re.compile(r"^\d{1,15}:(TEST|LIVE):[A-Za-z0-9_-]{4,200}$")
# typed value -> payment setting (whole numbers)
NUMERIC = {
    "hold": "hold_minutes",
    "free": "free_cancel_hours",
    "keep": "late_keep_percent",
    "vat": "receipt_vat_code",
}


class PaymentInput(StatesGroup):
    """The owner is asked to type a payment setting (``data['setting']``) or a service's rule."""

    value = State()
    rule = State()


def parse_rule(text: str) -> DepositRule:
    """``-``/``0``: none; ``500``: a fixed amount; ``30%``: a percentage; ``100%``/``full``: full
    prepayment. Raises :class:`InvalidInput` (the rule's own checks) or ``ValueError``."""
    value = text.strip().lower().replace(",", ".").replace(" ", "")
    if value in {"-", "—", "0", "no", "none", "нет"}:
        return DepositRule()
    if value in {"full", "100%", "полная", "полностью"}:
        return DepositRule.full()
    try:
        if value.endswith("%"):
            return DepositRule(DepositKind.PERCENT, Decimal(value[:-1]))
        return DepositRule(DepositKind.FIXED, Decimal(value))
    except InvalidOperation as exc:
        raise ValueError(text) from exc


def rule_text(texts: BotTexts, locale: str, service: Service) -> str:
    rule = service.deposit_rule
    return texts(
        locale,
        "adm_pay_rule",
        rule_kind=rule.kind.value,
        amount=texts.money(rule.value, service.currency),
        percent=f"{rule.value.normalize():f}",
    )


async def payment_screen(
    event: CallbackQuery | Message,
    core: BookingCore,
    payments: Payments,
    texts: BotTexts,
    locale: str,
    settings: PaymentSettings | None = None,
) -> None:
    settings = settings or await core.deposits.settings()
    if settings.provider_token is None:
        provider = "none"
    else:
        provider = "ok" if await payments.provider_token(settings) else "unreadable"
    text = texts(
        locale,
        "adm_pay_screen",
        provider=provider,
        hold=settings.hold_minutes,
        receipts=settings.receipts,
        vat=settings.receipt_vat_code,
        policy=payments.policy(settings, locale=locale),
    )

    def item(key: str, name: str, **values: object) -> list:
        return [button(texts(locale, key, **values), PaySetting(name=name).pack())]

    rows = [item("adm_pay_btn_token", "token")]
    if settings.provider_token is not None:
        rows.append(item("adm_pay_btn_off", "off"))
    rows += [
        item("adm_pay_btn_services", "svc"),
        item("adm_pay_btn_hold", "hold"),
        item("adm_pay_btn_free", "free"),
        item("adm_pay_btn_keep", "keep"),
        item("adm_pay_btn_receipts", "receipts", on=settings.receipts),
        item("adm_pay_btn_vat", "vat"),
        back_to_menu(texts, locale, "settings"),
    ]
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "payments"))
async def open_screen(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    await callback.answer()
    await state.clear()
    await payment_screen(callback, core, payments, texts, locale)


@routes.callback_query(PaySetting.filter(F.name == "receipts"))
async def toggle_receipts(
    callback: CallbackQuery, core: BookingCore, payments: Payments, texts: BotTexts, locale: str
) -> None:
    current = await core.deposits.settings()
    updated = await core.deposits.update_settings(receipts=not current.receipts)
    await callback.answer(texts(locale, "adm_saved"))
    await payment_screen(callback, core, payments, texts, locale, updated)


@routes.callback_query(PaySetting.filter(F.name == "off"))
async def stop_deposits(
    callback: CallbackQuery, core: BookingCore, payments: Payments, texts: BotTexts, locale: str
) -> None:
    """Forget the provider token: new bookings take no deposit (holds already taken run their
    course; paid deposits stay recorded)."""
    updated = await core.deposits.update_settings(provider_token=None)
    await callback.answer(texts(locale, "adm_saved"))
    await payment_screen(callback, core, payments, texts, locale, updated)


@routes.callback_query(PaySetting.filter(F.name.in_({*NUMERIC, "token"})))
async def ask_value(
    callback: CallbackQuery,
    callback_data: PaySetting,
    state: FSMContext,
    texts: BotTexts,
    locale: str,
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=PaymentInput.value,
        prompt=texts(locale, f"adm_pay_ask_{callback_data.name}"),
        back=back_to_menu(texts, locale, "payments"),
        data={"setting": callback_data.name},
    )


@routes.message(PaymentInput.value, F.text)
async def save_value(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    name = (await state.get_data()).get("setting", "")
    text = (message.text or "").strip()
    if name == "token":
        # the token is a secret: it does not stay in the chat, whatever happens next
        try:
            await message.delete()
        except TelegramBadRequest:
            log.info("could not delete the message holding a provider token")
        if not PROVIDER_TOKEN.match(text):
            await message.answer(texts(locale, "adm_pay_token_bad"))
            return
        changes: dict[str, object] = {"provider_token": payments.vault.seal(text)}
    else:
        try:
            changes = {NUMERIC[name]: int(text)}
        except (ValueError, KeyError):
            await message.answer(texts(locale, "adm_bad_number"))
            return
    updated = await change_or_explain(
        message, texts, locale, core.deposits.update_settings(**changes)
    )
    if updated is None:
        return
    await state.clear()
    await message.answer(texts(locale, "adm_pay_token_saved" if name == "token" else "adm_saved"))
    await payment_screen(message, core, payments, texts, locale, updated)


@routes.callback_query(PaySetting.filter(F.name == "svc"))
async def services(
    callback: CallbackQuery, state: FSMContext, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    items = await core.catalogue.list_services(active_only=False)
    rows = [
        [
            button(
                f"{s.name} — {rule_text(texts, locale, s)}"[:60],
                PaySetting(name="dep", service_id=s.id).pack(),
            )
        ]
        for s in items
    ]
    rows.append(back_to_menu(texts, locale, "payments"))
    await show(
        callback, texts(locale, "adm_pay_services"), InlineKeyboardMarkup(inline_keyboard=rows)
    )


@routes.callback_query(PaySetting.filter(F.name == "dep"))
async def ask_rule(
    callback: CallbackQuery,
    callback_data: PaySetting,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    service = await core.catalogue.get_service(callback_data.service_id)
    await ask_for_input(
        callback,
        state,
        input_state=PaymentInput.rule,
        prompt=texts(
            locale,
            "adm_pay_ask_rule",
            service=service.name,
            price=texts.money(service.price, service.currency),
            rule=rule_text(texts, locale, service),
        ),
        back=back_to_menu(texts, locale, "payments"),
        data={"service_id": service.id},
    )


@routes.message(PaymentInput.rule, F.text)
async def save_rule(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    payments: Payments,
    texts: BotTexts,
    locale: str,
) -> None:
    service_id = int((await state.get_data()).get("service_id", 0))
    try:
        rule = parse_rule(message.text or "")
    except ValueError:
        await message.answer(texts(locale, "adm_pay_bad_rule"))
        return
    except InvalidInput:
        await message.answer(texts(locale, "adm_pay_bad_rule"))
        return
    service = await change_or_explain(
        message, texts, locale, core.deposits.set_rule(service_id, rule)
    )
    if service is None:
        return
    await state.clear()
    await message.answer(
        texts(
            locale,
            "adm_pay_rule_saved",
            service=service.name,
            rule=rule_text(texts, locale, service),
        )
    )
    await payment_screen(message, core, payments, texts, locale)
