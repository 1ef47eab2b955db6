"""Payments: sendInvoice, createInvoiceLink, answerPreCheckoutQuery (see :mod:`..payments`)."""

from __future__ import annotations

from typing import Any

from sandbox.telegram.errors import bad_request
from sandbox.telegram.methods.base import CallContext, parse_reply_markup, reply_target
from sandbox.telegram.models import ChatMessage
from sandbox.telegram.params import Params
from sandbox.telegram.payments import invoice_from_params
from sandbox.telegram.render import message_to_api


async def send_invoice(ctx: CallContext, params: Params) -> dict[str, Any]:
    """``sendInvoice``: the first inline button, if any are given, must be a Pay button."""
    conv = ctx.world.chat_for_bot(ctx.bot, params.chat_id(), sending=True)
    invoice = invoice_from_params(params)
    markup = parse_reply_markup(params, inline_only=True)
    if markup is not None:
        rows = markup["inline_keyboard"]
        if not rows or not rows[0] or not rows[0][0].get("pay"):
            raise bad_request("the first button of an invoice must be a Pay button")
    reply_to = reply_target(params, conv)
    ctx.world.limiter.hit(ctx.bot.id, conv.user.id)
    msg = ChatMessage(
        message_id=conv.new_message_id(),
        from_bot=True,
        date=ctx.world.now(),
        reply_markup=markup,
        reply_to_message_id=reply_to,
        invoice=invoice,
    )
    conv.messages[msg.message_id] = msg
    ctx.world.touch(conv)
    return message_to_api(conv, msg)


async def create_invoice_link(ctx: CallContext, params: Params) -> str:
    """``createInvoiceLink``: an ``https://t.me/$...`` link a user can open and pay."""
    return ctx.world.payments.link(ctx.bot.id, invoice_from_params(params))


async def answer_pre_checkout_query(ctx: CallContext, params: Params) -> bool:
    """``answerPreCheckoutQuery``: within 10 s of the query, or it is "too old"."""
    return ctx.world.payments.answer(ctx.bot.id, params)


METHODS = {
    "sendInvoice": send_invoice,
    "createInvoiceLink": create_invoice_link,
    "answerPreCheckoutQuery": answer_pre_checkout_query,
}
