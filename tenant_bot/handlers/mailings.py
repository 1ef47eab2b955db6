"""The customer's one tap under a mailing: no more mailings (or, tapped again, mailings again)."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore
from tenant_bot.callbacks import Mailing
from tenant_bot.handlers.common import sender_id
from tenant_bot.outreach_views import unsubscribe_keyboard
from tenant_bot.texts import BotTexts

routes = Routes("mailings")


@routes.callback_query(Mailing.filter(F.action.in_({"off", "on"})))
async def subscription(
    callback: CallbackQuery, callback_data: Mailing, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    """Opt out (``off``) or back in (``on``); the button under the message flips."""
    out = callback_data.action == "off"
    if out:
        await core.broadcasts.opt_out(sender_id(callback))
    else:
        await core.broadcasts.opt_in(sender_id(callback))
    await callback.answer(texts(locale, "mailing_unsubscribed" if out else "mailing_subscribed"))
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(
            reply_markup=unsubscribe_keyboard(texts, locale, subscribed=not out)
        )
