"""Buying a bot: plan -> business name -> bot token -> time zone -> language -> card -> pay."""

from __future__ import annotations

import contextlib
import logging

from aiogram import Bot, F
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from fleet.billing.checkout import Order
from fleet.billing.errors import PaymentProviderError
from fleet.billing.receipts import parse_contact
from fleet.billing.wiring import Billing
from fleet.errors import BotTokenRejected, ConflictError, ValidationError
from fleet.secrets import SecretBox
from kit.formats import find_zone, money
from kit.routing import Routes
from sales_bot import keyboards
from sales_bot.callbacks import LanguageCb, MenuAction, MenuCb, PlanCb, SaveCardCb, TimezoneCb
from sales_bot.states import Purchase
from schemas.plans import plan_text
from schemas.tenants import LOCALES, check_timezone
from templates import Texts

log = logging.getLogger(__name__)
router = Routes("purchase")


def token_problem(texts: Texts, locale: str, exc: BotTokenRejected) -> str:
    """The owner-facing reason a token was refused."""
    key = {"malformed": "token_malformed", "invalid": "token_unknown"}.get(
        exc.reason, "token_unreachable"
    )
    return texts(locale, key)


async def forget_message(bot: Bot, message: Message) -> None:
    """Delete a message holding a secret (best effort: it may be too old or already gone)."""
    with contextlib.suppress(TelegramAPIError):
        await bot.delete_message(chat_id=message.chat.id, message_id=message.message_id)


@router.callback_query(MenuCb.filter(F.action == MenuAction.BUY))
async def show_plans(
    query: CallbackQuery, state: FSMContext, billing: Billing, texts: Texts, locale: str
) -> None:
    await state.clear()
    await query.answer()
    items = await billing.checkout.list_plans()
    if query.message is None:
        return
    if not items:
        await query.message.answer(texts(locale, "no_plans"))
        return
    shown = [
        {
            "name": plan_text(p, locale)[0],
            "price": money(p["price"], p["currency"]),
            "period_days": p["period_days"],
            "description": plan_text(p, locale)[1],
        }
        for p in items
    ]
    await query.message.answer(
        texts(locale, "plans", items=shown), reply_markup=keyboards.plans(texts, locale, items)
    )


@router.callback_query(PlanCb.filter())
async def choose_plan(
    query: CallbackQuery,
    callback_data: PlanCb,
    state: FSMContext,
    billing: Billing,
    texts: Texts,
    locale: str,
) -> None:
    try:
        plan = await billing.checkout.active_plan(callback_data.code)
    except ValidationError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    await state.set_state(Purchase.name)
    await state.set_data({"plan_code": plan["code"]})
    if query.message is not None:
        await query.message.answer(
            texts(locale, "ask_name", plan_name=plan_text(plan, locale)[0]),
            reply_markup=keyboards.cancel(texts, locale),
        )


@router.message(Purchase.name, F.text)
async def got_name(message: Message, state: FSMContext, texts: Texts, locale: str) -> None:
    name = (message.text or "").strip()
    if not 1 <= len(name) <= 128 or name.startswith("/"):
        await message.answer(texts(locale, "bad_name"))
        return
    await state.update_data(display_name=name)
    await state.set_state(Purchase.token)
    await message.answer(
        texts(locale, "ask_token", name=name), reply_markup=keyboards.cancel(texts, locale)
    )


@router.message(Purchase.token, F.text)
async def got_token(
    message: Message,
    state: FSMContext,
    bot: Bot,
    billing: Billing,
    box: SecretBox,
    texts: Texts,
    locale: str,
) -> None:
    token = (message.text or "").strip()
    await forget_message(bot, message)
    try:
        identity = await billing.tokens.get_me(token)
    except BotTokenRejected as exc:
        await message.answer(
            token_problem(texts, locale, exc), reply_markup=keyboards.cancel(texts, locale)
        )
        return
    owner = message.from_user.id if message.from_user else message.chat.id
    if not await billing.checkout.token_available(
        token=token, bot_id=identity.id, owner_telegram_id=owner
    ):
        await message.answer(
            texts(locale, "token_in_use"), reply_markup=keyboards.cancel(texts, locale)
        )
        return
    # The FSM lives in Redis: the token goes there encrypted, like everywhere else at rest.
    await state.update_data(
        token_enc=box.encrypt(token), bot_id=identity.id, bot_username=identity.username
    )
    await state.set_state(Purchase.timezone)
    await message.answer(
        texts(locale, "ask_timezone", bot_username=identity.username),
        reply_markup=keyboards.timezones(texts, locale),
    )


async def _timezone_chosen(
    message: Message, state: FSMContext, name: str, texts: Texts, locale: str
) -> None:
    await state.update_data(timezone=name)
    await state.set_state(Purchase.language)
    await message.answer(texts(locale, "ask_language"), reply_markup=keyboards.languages())


@router.callback_query(Purchase.timezone, TimezoneCb.filter())
async def timezone_button(
    query: CallbackQuery, callback_data: TimezoneCb, state: FSMContext, texts: Texts, locale: str
) -> None:
    try:
        name = check_timezone(callback_data.name)
    except ValueError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    if query.message is not None:
        await _timezone_chosen(query.message, state, name, texts, locale)  # type: ignore[arg-type]


@router.message(Purchase.timezone, F.text)
async def timezone_typed(message: Message, state: FSMContext, texts: Texts, locale: str) -> None:
    try:
        name = check_timezone(find_zone(message.text or "") or "")
    except ValueError:
        await message.answer(
            texts(locale, "bad_timezone"), reply_markup=keyboards.timezones(texts, locale)
        )
        return
    await _timezone_chosen(message, state, name, texts, locale)


@router.callback_query(Purchase.language, LanguageCb.filter())
async def language_chosen(
    query: CallbackQuery,
    callback_data: LanguageCb,
    state: FSMContext,
    billing: Billing,
    texts: Texts,
    locale: str,
) -> None:
    if callback_data.locale not in LOCALES:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    await state.update_data(bot_locale=callback_data.locale)
    await state.set_state(Purchase.save_card)
    if query.message is None:
        return
    try:
        plan = await billing.checkout.active_plan((await state.get_data()).get("plan_code", ""))
    except ValidationError:
        await state.clear()
        await query.message.answer(texts(locale, "stale_button"))
        return
    # Consent to automatic charges is asked in words: amount, period, how to cancel.
    amount = money(plan["price"], plan["currency"])
    await query.message.answer(
        texts(
            locale,
            "autopay_offer",
            plan_name=plan_text(plan, locale)[0],
            amount=amount,
            period_days=plan["period_days"],
        ),
        reply_markup=keyboards.autopay_offer(
            texts, locale, amount=amount, period_days=plan["period_days"]
        ),
    )


@router.callback_query(Purchase.save_card, SaveCardCb.filter())
async def save_card_chosen(
    query: CallbackQuery,
    callback_data: SaveCardCb,
    state: FSMContext,
    billing: Billing,
    box: SecretBox,
    texts: Texts,
    locale: str,
) -> None:
    await query.answer()
    consent = None
    if callback_data.save:
        try:
            plan = await billing.checkout.active_plan((await state.get_data()).get("plan_code", ""))
        except ValidationError:
            await state.clear()
            if query.message is not None:
                await query.message.answer(texts(locale, "stale_button"))
            return
        consent = billing.checkout.autopay_consent(plan)
    await state.update_data(save_card=callback_data.save, autopay_consent=consent)
    if query.message is None:
        return
    if billing.checkout.receipts_required:
        await state.set_state(Purchase.email)
        await query.message.answer(texts(locale, "ask_email"))
        return
    await _checkout(query.message, query.from_user.id, state, billing, box, texts, locale)  # type: ignore[arg-type]


@router.message(Purchase.email, F.text)
async def got_email(
    message: Message, state: FSMContext, billing: Billing, box: SecretBox, texts: Texts, locale: str
) -> None:
    try:
        contact = parse_contact(message.text or "")
    except ValidationError:
        await message.answer(texts(locale, "bad_email"))
        return
    await state.update_data(email=contact.email, phone=contact.phone)
    owner = message.from_user.id if message.from_user else message.chat.id
    await _checkout(message, owner, state, billing, box, texts, locale)


async def _checkout(
    message: Message,
    owner: int,
    state: FSMContext,
    billing: Billing,
    box: SecretBox,
    texts: Texts,
    locale: str,
) -> None:
    data = await state.get_data()
    if "token_enc" not in data or "plan_code" not in data:
        await state.clear()
        await message.answer(texts(locale, "stale_button"))
        return
    order = Order(
        owner_telegram_id=owner,
        plan_code=data["plan_code"],
        display_name=data["display_name"],
        bot_token=box.decrypt(data["token_enc"]),
        bot_id=data["bot_id"],
        bot_username=data["bot_username"],
        timezone=data.get("timezone", "Europe/Moscow"),
        locale=data.get("bot_locale", locale),
        save_payment_method=bool(data.get("save_card")),
        autopay_consent=data.get("autopay_consent"),
        customer_email=data.get("email"),
        customer_phone=data.get("phone"),
    )
    try:
        checkout = await billing.checkout.purchase(order)
    except ConflictError:
        await state.clear()
        await message.answer(texts(locale, "token_in_use"))
        return
    except ValidationError as exc:
        if exc.field in ("email", "phone", "contact"):
            await state.set_state(Purchase.email)
            await message.answer(texts(locale, "bad_email"))
            return
        await state.clear()
        await message.answer(texts(locale, "stale_button"))
        return
    except PaymentProviderError:
        # The state is kept: pressing the card button again retries with the same payment.
        await message.answer(texts(locale, "payment_unavailable"))
        return
    await state.clear()
    price = money(checkout.amount, checkout.currency)
    await message.answer(
        texts(
            locale,
            "pay",
            plan_name=checkout.plan_name_in(locale),
            amount=price,
            bot_username=order.bot_username,
        ),
        reply_markup=keyboards.pay(
            checkout.confirmation_url, texts(locale, "button_pay", amount=price)
        ),
    )
