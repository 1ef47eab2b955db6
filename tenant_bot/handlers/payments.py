"""Telegram Payments updates: the pre-checkout question, the successful payment, "refund made".

Thin: :class:`~tenant_bot.payments.Payments` holds the rules' Telegram side, the booking core the
rules themselves. Pre-checkout answers go first and fast (Telegram fails a payment unanswered after
10 s), so the handler does nothing else.
"""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery

from kit.routing import Routes
from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import NotFound
from tenant_bot.callbacks import Refund
from tenant_bot.payments import Payments
from tenant_bot.texts import BotTexts

routes = Routes("payments")


@routes.pre_checkout_query()
async def pre_checkout(query: PreCheckoutQuery, payments: Payments, locale: str) -> None:
    await payments.pre_checkout(query, locale=locale)


@routes.message(F.successful_payment)
async def successful_payment(message: Message, payments: Payments, locale: str) -> None:
    await payments.paid(message, locale=locale)


@routes.callback_query(Refund.filter())
async def refund_made(
    callback: CallbackQuery,
    callback_data: Refund,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
    is_owner: bool,
) -> None:
    """The owner says the refund is made (recorded once; a repeat tap just says so again)."""
    if not is_owner:
        await callback.answer()
        return
    try:
        await core.deposits.mark_refunded(callback_data.booking_id)
    except NotFound:
        await callback.answer(texts(locale, "pay_no_refund_due"), show_alert=True)
        return
    await callback.answer(texts(locale, "pay_refund_recorded"))
    if callback.message is not None and isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
