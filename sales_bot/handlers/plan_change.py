""" "My bots" → Change plan: the plans on sale, the quote of a change by the rule
(:mod:`fleet.billing.plan_changes`), then one confirmation: an upgrade to pay gets its YooKassa
checkout, other changes are done at once. Double taps and repeated confirmations change nothing
twice (the service is idempotent)."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery

from fleet.billing.errors import PaymentProviderError
from fleet.billing.plan_changes import ChangeKind, PlanChange
from fleet.billing.wiring import Billing
from fleet.errors import ConflictError, NotFoundError, ValidationError
from kit.formats import money
from kit.routing import Routes
from sales_bot import keyboards
from sales_bot.callbacks import BotAction, BotCb, ChangePlanCb
from sales_bot.formatting import day
from schemas.plans import plan_text
from templates import Texts

router = Routes("plan_change")


def _plan_name(change: PlanChange, locale: str) -> str:
    plan = {
        "name": change.to_plan_name,
        "description": "",
        "translations": change.to_plan_translations,
    }
    return plan_text(plan, locale)[0]


@router.callback_query(BotCb.filter(F.action == BotAction.PLANS))
async def show_plans(
    query: CallbackQuery, callback_data: BotCb, billing: Billing, texts: Texts, locale: str
) -> None:
    try:
        bot = await billing.accounts.get_bot(query.from_user.id, callback_data.tenant_id)
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    items = await billing.checkout.list_plans()
    if query.message is None:
        return
    await query.message.answer(
        texts(
            locale,
            "plan_change_menu",
            bot_username=bot.bot_username or bot.slug,
            plan_name=bot.plan_name_in(locale),
            paid_until=day(bot.paid_until, bot.timezone),
        ),
        reply_markup=keyboards.plan_choices(
            texts, locale, tenant_id=bot.tenant_id, items=items, current=bot.plan_code
        ),
    )


@router.callback_query(ChangePlanCb.filter())
async def change_plan(
    query: CallbackQuery, callback_data: ChangePlanCb, billing: Billing, texts: Texts, locale: str
) -> None:
    owner = query.from_user.id
    service = billing.plan_changes
    try:
        bot = await billing.accounts.get_bot(owner, callback_data.tenant_id)
        if not callback_data.go:
            change = await service.quote(
                tenant_id=bot.tenant_id, plan_code=callback_data.code, owner_telegram_id=owner
            )
        else:
            change = await service.change(
                tenant_id=bot.tenant_id,
                plan_code=callback_data.code,
                owner_telegram_id=owner,
                actor=f"telegram:{owner}",
            )
    except ConflictError:
        await query.answer(texts(locale, "plan_change_refused"), show_alert=True)
        return
    except (NotFoundError, ValidationError):
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    except PaymentProviderError:
        await query.answer(texts(locale, "payment_unavailable"), show_alert=True)
        return
    await query.answer()
    if query.message is None:
        return
    zone = bot.timezone
    name = _plan_name(change, locale)
    amount_due = money(change.amount_due, change.currency)
    if not callback_data.go and change.kind is not ChangeKind.UNCHANGED:
        await query.message.answer(
            texts(
                locale,
                "plan_change_quote",
                kind=change.kind.value,
                plan_name=name,
                price=money(change.price, change.currency),
                period_days=change.period_days,
                amount_due=amount_due,
                credit=money(change.credit, change.currency),
                effective_at=day(change.effective_at, zone),
                paid_until=day(change.paid_until, zone),
            ),
            reply_markup=keyboards.confirm_plan_change(
                texts,
                locale,
                tenant_id=bot.tenant_id,
                code=change.to_plan,
                label=texts(
                    locale,
                    "button_plan_change_confirm",
                    kind=change.kind.value,
                    amount=amount_due,
                    day=day(change.effective_at, zone),
                ),
            ),
        )
        return
    if change.checkout is not None:
        await query.message.answer(
            texts(
                locale,
                "plan_change_pay",
                plan_name=name,
                amount=amount_due,
                bot_username=bot.bot_username or bot.slug,
            ),
            reply_markup=keyboards.pay(
                change.checkout.confirmation_url, texts(locale, "button_pay", amount=amount_due)
            ),
        )
        return
    await query.message.answer(
        texts(
            locale,
            "plan_change_done",
            kind=change.kind.value,
            plan_name=name,
            effective_at=day(change.effective_at, zone),
            paid_until=day(change.paid_until, zone),
        )
    )
