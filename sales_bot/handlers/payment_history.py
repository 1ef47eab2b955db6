""" "My bots" → Payments: a bot's payments, newest first, a page at a time (date, amount, status,
what for, and what was refunded)."""

from __future__ import annotations

from aiogram.types import CallbackQuery

from fleet.billing.wiring import Billing
from fleet.errors import NotFoundError
from kit.formats import money
from kit.routing import Routes
from sales_bot import keyboards
from sales_bot.callbacks import HistoryCb
from sales_bot.formatting import day
from templates import Texts

router = Routes("payment_history")


@router.callback_query(HistoryCb.filter())
async def show_payments(
    query: CallbackQuery, callback_data: HistoryCb, billing: Billing, texts: Texts, locale: str
) -> None:
    try:
        page = await billing.accounts.payment_history(
            query.from_user.id, callback_data.tenant_id, page=callback_data.page
        )
    except NotFoundError:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await query.answer()
    if query.message is None:
        return
    bot = page.bot
    username = bot.bot_username or bot.slug
    if not page.entries:
        text = texts(locale, "payments_empty", bot_username=username)
    else:
        entries = [
            {
                "day": day(e.day, bot.timezone),
                "amount": money(e.amount, e.currency),
                "status": e.status,
                "purpose": e.purpose,
                "plan": e.plan_name_in(locale),
                "refunded": money(e.refunded, e.currency) if e.refunded else None,
                "reason": e.cancellation_reason,
            }
            for e in page.entries
        ]
        text = texts(locale, "payments", bot_username=username, entries=entries, page=page.page)
    await query.message.answer(
        text,
        reply_markup=keyboards.history_pages(
            texts, locale, tenant_id=bot.tenant_id, page=page.page, has_older=page.has_older
        ),
    )
