""" "My bots": status, paid-until, renew, auto-renewal on/off, change token, receipt contact."""

from __future__ import annotations

from aiogram import Bot, F
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from fleet.billing.accounts import OwnerBot
from fleet.billing.errors import PaymentProviderError
from fleet.billing.wiring import Billing
from fleet.errors import BotTokenRejected, ConflictError, NotFoundError, ValidationError
from kit.formats import money, zone_label
from kit.routing import Routes
from sales_bot import keyboards
from sales_bot.callbacks import BotAction, BotCb, MenuAction, MenuCb
from sales_bot.formatting import day
from sales_bot.handlers.purchase import forget_message, token_problem
from sales_bot.states import ChangeReceiptContact, ChangeToken
from templates import Texts

router = Routes("my_bots")


def render_card(texts: Texts, locale: str, bot: OwnerBot) -> str:
    card = texts(
        locale,
        "bot_card",
        display_name=bot.display_name,
        bot_username=bot.bot_username or bot.slug,
        status=bot.status,
        plan_name=bot.plan_name_in(locale),
        paid_until=day(bot.paid_until, bot.timezone),
        auto_renew=bot.auto_renew,
        card=bot.payment_method_title,
        timezone=zone_label(bot.timezone, locale),
    )
    currency = bot.currency or "RUB"
    if bot.next_plan_name is not None and bot.next_price is not None:
        card += "\n" + texts(
            locale,
            "bot_card_next_plan",
            plan_name=bot.next_plan_name_in(locale),
            day=day(bot.next_plan_at, bot.timezone),
            amount=money(bot.next_price, currency),
        )
    if bot.auto_renew and bot.has_payment_method:
        price = bot.next_price if bot.next_price is not None else bot.price
        card += "\n" + texts(
            locale,
            "bot_card_autopay_terms",
            amount=money(price or 0, currency),
            period_days=bot.next_period_days or bot.period_days,
        )
    return card


async def _show_list(
    message: Message, owner: int, billing: Billing, texts: Texts, locale: str
) -> None:
    bots = await billing.accounts.list_bots(owner)
    if not bots:
        await message.answer(
            texts(locale, "my_bots_empty"), reply_markup=keyboards.main_menu(texts, locale)
        )
        return
    await message.answer(
        texts(locale, "my_bots_title"), reply_markup=keyboards.bot_list(texts, locale, bots)
    )


@router.message(Command("mybots"))
async def my_bots_command(
    message: Message, state: FSMContext, billing: Billing, texts: Texts, locale: str
) -> None:
    await state.clear()
    owner = message.from_user.id if message.from_user else message.chat.id
    await _show_list(message, owner, billing, texts, locale)


@router.callback_query(MenuCb.filter(F.action == MenuAction.BOTS))
async def my_bots_button(
    query: CallbackQuery, state: FSMContext, billing: Billing, texts: Texts, locale: str
) -> None:
    await state.clear()
    await query.answer()
    if query.message is not None:
        await _show_list(query.message, query.from_user.id, billing, texts, locale)  # type: ignore[arg-type]


@router.callback_query(BotCb.filter(F.action == BotAction.SHOW))
async def show_bot(
    query: CallbackQuery, callback_data: BotCb, billing: Billing, texts: Texts, locale: str
) -> None:
    try:
        bot = await billing.accounts.get_bot(query.from_user.id, callback_data.tenant_id)
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            render_card(texts, locale, bot), reply_markup=keyboards.bot_card(texts, locale, bot)
        )


@router.callback_query(BotCb.filter(F.action == BotAction.RENEW))
async def renew(
    query: CallbackQuery, callback_data: BotCb, billing: Billing, texts: Texts, locale: str
) -> None:
    try:
        checkout = await billing.checkout.renew(
            tenant_id=callback_data.tenant_id, owner_telegram_id=query.from_user.id
        )
    except (NotFoundError, ConflictError, ValidationError):
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    except PaymentProviderError:
        await query.answer(texts(locale, "payment_unavailable"), show_alert=True)
        return
    await query.answer()
    bot = await billing.accounts.get_bot(query.from_user.id, callback_data.tenant_id)
    price = money(checkout.amount, checkout.currency)
    if query.message is not None:
        await query.message.answer(
            texts(
                locale,
                "pay",
                plan_name=checkout.plan_name_in(locale),
                amount=price,
                bot_username=bot.bot_username or bot.slug,
            ),
            reply_markup=keyboards.pay(
                checkout.confirmation_url, texts(locale, "button_pay", amount=price)
            ),
        )


@router.callback_query(BotCb.filter(F.action == BotAction.AUTO_ON))
async def offer_auto_renew(
    query: CallbackQuery, callback_data: BotCb, billing: Billing, texts: Texts, locale: str
) -> None:
    """Turning auto-renewal on asks for consent to its terms first (amount, period, cancelling)."""
    try:
        bot = await billing.accounts.get_bot(query.from_user.id, callback_data.tenant_id)
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    if bot.subscription_status is None or not bot.has_payment_method:
        await query.answer(texts(locale, "autorenew_needs_card"), show_alert=True)
        return
    await query.answer()
    terms = billing.accounts.autopay_terms(bot)
    amount = money(terms["amount"], terms["currency"])
    plan_name = bot.next_plan_name_in(locale) or bot.plan_name_in(locale)
    if query.message is not None:
        await query.message.answer(
            texts(
                locale,
                "autopay_confirm",
                bot_username=bot.bot_username or bot.slug,
                plan_name=plan_name,
                amount=amount,
                period_days=terms["period_days"],
                card=bot.payment_method_title,
                paid_until=day(bot.paid_until, bot.timezone),
            ),
            reply_markup=keyboards.autopay_confirm(
                texts,
                locale,
                tenant_id=bot.tenant_id,
                amount=amount,
                period_days=terms["period_days"],
            ),
        )


@router.callback_query(BotCb.filter(F.action.in_({BotAction.AUTO_AGREE, BotAction.AUTO_OFF})))
async def switch_auto_renew(
    query: CallbackQuery, callback_data: BotCb, billing: Billing, texts: Texts, locale: str
) -> None:
    """Consent given (turn on, recording the terms and when), or one tap to turn it off."""
    enabled = callback_data.action == BotAction.AUTO_AGREE
    owner = query.from_user.id
    try:
        consent = None
        if enabled:
            consent = billing.accounts.autopay_terms(
                await billing.accounts.get_bot(owner, callback_data.tenant_id)
            )
        bot = await billing.accounts.set_auto_renew(
            owner_telegram_id=owner,
            tenant_id=callback_data.tenant_id,
            enabled=enabled,
            consent=consent,
        )
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    except ValidationError:
        await query.answer(texts(locale, "autorenew_needs_card"), show_alert=True)
        return
    await query.answer(texts(locale, "autorenew_switched", enabled=enabled))
    if query.message is None:
        return
    username = bot.bot_username or bot.slug
    if consent is not None:
        told = texts(
            locale,
            "autopay_on",
            bot_username=username,
            amount=money(consent["amount"], consent["currency"]),
            period_days=consent["period_days"],
        )
    else:
        told = texts(
            locale,
            "autopay_off",
            bot_username=username,
            paid_until=day(bot.paid_until, bot.timezone),
        )
    await query.message.answer(told)
    await query.message.answer(
        render_card(texts, locale, bot), reply_markup=keyboards.bot_card(texts, locale, bot)
    )


@router.callback_query(BotCb.filter(F.action == BotAction.TOKEN))
async def ask_new_token(
    query: CallbackQuery,
    callback_data: BotCb,
    state: FSMContext,
    billing: Billing,
    texts: Texts,
    locale: str,
) -> None:
    try:
        bot = await billing.accounts.get_bot(query.from_user.id, callback_data.tenant_id)
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    await state.set_state(ChangeToken.token)
    await state.set_data({"tenant_id": bot.tenant_id})
    if query.message is not None:
        await query.message.answer(
            texts(locale, "ask_new_token", bot_username=bot.bot_username or bot.slug),
            reply_markup=keyboards.cancel(texts, locale),
        )


@router.message(ChangeToken.token, F.text)
async def got_new_token(
    message: Message,
    state: FSMContext,
    bot: Bot,
    billing: Billing,
    texts: Texts,
    locale: str,
) -> None:
    token = (message.text or "").strip()
    await forget_message(bot, message)
    tenant_id = (await state.get_data()).get("tenant_id")
    owner = message.from_user.id if message.from_user else message.chat.id
    try:
        identity = await billing.tokens.get_me(token)
    except BotTokenRejected as exc:
        await message.answer(
            token_problem(texts, locale, exc), reply_markup=keyboards.cancel(texts, locale)
        )
        return
    try:
        changed = await billing.accounts.change_token(
            owner_telegram_id=owner, tenant_id=int(tenant_id or 0), token=token, identity=identity
        )
    except ConflictError:
        await message.answer(
            texts(locale, "token_in_use"), reply_markup=keyboards.cancel(texts, locale)
        )
        return
    except ValidationError:
        await message.answer(
            texts(locale, "token_same"), reply_markup=keyboards.cancel(texts, locale)
        )
        return
    except NotFoundError:
        await state.clear()
        await message.answer(texts(locale, "stale_button"))
        return
    await state.clear()
    await message.answer(
        texts(locale, "token_changed", bot_username=changed.bot_username or changed.slug)
    )


# -- issue 18: where receipts go ------------------------------------------------------------------


@router.callback_query(BotCb.filter(F.action == BotAction.RECEIPT))
async def ask_receipt_contact(
    query: CallbackQuery,
    callback_data: BotCb,
    state: FSMContext,
    billing: Billing,
    texts: Texts,
    locale: str,
) -> None:
    try:
        tenant, contact = await billing.contacts.current(
            owner_telegram_id=query.from_user.id, tenant_id=callback_data.tenant_id
        )
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    await state.set_state(ChangeReceiptContact.contact)
    await state.set_data({"tenant_id": tenant.id})
    if query.message is not None:
        await query.message.answer(
            texts(
                locale,
                "ask_receipt_contact",
                bot_username=tenant.bot_username or tenant.slug,
                contact=contact.shown(),
            ),
            reply_markup=keyboards.cancel(texts, locale),
        )


@router.message(ChangeReceiptContact.contact, F.text)
async def got_receipt_contact(
    message: Message, state: FSMContext, billing: Billing, texts: Texts, locale: str
) -> None:
    tenant_id = int((await state.get_data()).get("tenant_id") or 0)
    owner = message.from_user.id if message.from_user else message.chat.id
    try:
        contact = await billing.contacts.change(
            owner_telegram_id=owner, tenant_id=tenant_id, text=message.text or ""
        )
    except ValidationError:
        await message.answer(
            texts(locale, "bad_email"), reply_markup=keyboards.cancel(texts, locale)
        )
        return
    except NotFoundError:
        await state.clear()
        await message.answer(texts(locale, "stale_button"))
        return
    await state.clear()
    bot = await billing.accounts.get_bot(owner, tenant_id)
    await message.answer(
        texts(
            locale,
            "receipt_contact_changed",
            bot_username=bot.bot_username or bot.slug,
            contact=contact.shown(),
        )
    )
