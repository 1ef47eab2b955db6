"""The customer's review of a visit: stars from the request's buttons, then an optional comment.

The first rating of a visit wins (a second tap, or a tap on an old request, says it is rated); the
owners hear of each new review, and of a comment added to it, once, with a button to hide it.
"""

from __future__ import annotations

import functools

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import BusinessSettings
from tenant_bot.booking.outreach import Review
from tenant_bot.callbacks import Rate, ReviewAdmin
from tenant_bot.courier import Message as Outgoing
from tenant_bot.handlers.common import sender_id, show
from tenant_bot.keyboards import button, main_menu
from tenant_bot.notifications import Notifier
from tenant_bot.outreach_views import stars
from tenant_bot.states import ReviewFlow
from tenant_bot.texts import BotTexts

routes = Routes("reviews")

REVIEW_NOTICE = "review_notice"


def review_buttons(texts: BotTexts, locale: str, review: Review) -> InlineKeyboardMarkup:
    """The owner's button under a review: hide it from the ratings, or show it again."""
    action, key = ("s", "btn_review_show") if review.hidden else ("h", "btn_review_hide")
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    texts(locale, key),
                    ReviewAdmin(booking_id=review.booking_id, action=action).pack(),
                )
            ]
        ]
    )


async def tell_owners(
    notifier: Notifier, review: Review, settings: BusinessSettings, *, comment: bool
) -> None:
    """A new review (or its comment) to every owner, once, in each owner's language."""
    kind = "comment" if comment else "new"
    if not await notifier.once(f"review:{kind}:{review.booking_id}"):
        return
    texts = notifier.texts

    def render(locale: str) -> Outgoing:
        values = {
            "stars": stars(review.stars),
            "customer": review.customer_name or "—",
            "service": review.service_name,
            "staff": review.staff_name,
            "day": texts.day(locale, review.created_at.astimezone(settings.zone).date()),
            "comment": review.comment,
        }
        key = "review_owner_comment" if comment else "review_owner_new"
        return texts(locale, key, **values), review_buttons(texts, locale, review)

    for owner in notifier.owner_ids:
        locale = await notifier.owner_locale(owner)
        await notifier.courier.one_shot(
            REVIEW_NOTICE, review.booking_id, owner, functools.partial(render, locale)
        )


@routes.callback_query(Rate.filter(F.stars.in_({1, 2, 3, 4, 5})))
async def rate(
    callback: CallbackQuery,
    callback_data: Rate,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
) -> None:
    """Stars for a visit: thanks and an offer to comment; the owners are told."""
    customer = sender_id(callback)
    review = await core.reviews.rate(
        callback_data.booking_id, customer_telegram_id=customer, stars=callback_data.stars
    )
    if review is None:
        existing = await core.reviews.get(callback_data.booking_id)
        key = "review_already" if existing is not None else "review_unavailable"
        await callback.answer(texts(locale, key), show_alert=True)
        return
    await callback.answer()
    await state.set_state(ReviewFlow.comment)
    await state.set_data({"review": review.booking_id})
    skip = Rate(booking_id=review.booking_id, stars=0).pack()
    await show(
        callback,
        texts(locale, "review_thanks", stars=stars(review.stars)),
        InlineKeyboardMarkup(inline_keyboard=[[button(texts(locale, "btn_review_skip"), skip)]]),
    )
    await tell_owners(notifier, review, await cache.settings(), comment=False)


@routes.callback_query(Rate.filter(F.stars == 0))
async def skip_comment(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str, is_owner: bool
) -> None:
    await callback.answer()
    await state.clear()
    await show(callback, texts(locale, "review_done"), main_menu(texts, locale, is_owner=is_owner))


@routes.message(ReviewFlow.comment, F.text, ~F.text.startswith("/"))
async def comment(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    locale: str,
    is_owner: bool,
) -> None:
    """The customer's words, added to their review once; the owners are told."""
    booking_id = (await state.get_data()).get("review")
    await state.clear()
    review = None
    if isinstance(booking_id, int):
        review = await core.reviews.comment(
            booking_id, customer_telegram_id=sender_id(message), text=message.text or ""
        )
    await message.answer(
        texts(locale, "review_comment_saved" if review else "review_already"),
        reply_markup=main_menu(texts, locale, is_owner=is_owner),
    )
    if review is not None:
        await tell_owners(notifier, review, await cache.settings(), comment=True)
