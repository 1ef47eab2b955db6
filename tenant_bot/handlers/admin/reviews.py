"""The owner's reviews: the newest ones, hide or show each, ask for reviews or not, and the
threshold from which customers see ratings."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.callbacks import Admin, ReviewAdmin
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu
from tenant_bot.handlers.common import show
from tenant_bot.handlers.reviews import review_buttons
from tenant_bot.keyboards import button
from tenant_bot.outreach_views import average, stars
from tenant_bot.states import ReviewFlow
from tenant_bot.texts import BotTexts

routes = Routes("admin_reviews")

SHOWN = 10


async def reviews_screen(
    event: CallbackQuery | Message,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    settings = await core.reviews.settings()
    zone = (await cache.settings()).zone
    latest = await core.reviews.latest(limit=SHOWN)
    ratings = await core.reviews.ratings()
    rating = ""
    if ratings.business is not None:
        rating = texts(
            locale,
            "rating_business",
            average=average(locale, ratings.business.average),
            count=ratings.business.count,
        )
    lines = "\n".join(
        texts(
            locale,
            "adm_review_line",
            stars=stars(r.stars),
            customer=r.customer_name or "—",
            staff=r.staff_name,
            day=texts.day(locale, r.created_at.astimezone(zone).date()),
            comment=r.comment,
            hidden=r.hidden,
        )
        for r in latest
    )
    text = texts(
        locale,
        "adm_reviews",
        enabled=settings.reviews_enabled,
        threshold=settings.review_min_count,
        rating=rating,
        lines=lines,
    )
    rows = [
        [
            button(
                texts(locale, "adm_reviews_toggle", on=settings.reviews_enabled),
                ReviewAdmin(booking_id=0, action="t").pack(),
            )
        ],
        [
            button(
                texts(locale, "adm_reviews_threshold", count=settings.review_min_count),
                ReviewAdmin(booking_id=0, action="n").pack(),
            )
        ],
    ]
    for r in latest:
        action, mark = ("S", "👁") if r.hidden else ("H", "🙈")
        label = f"{mark} {stars(r.stars)} · {r.customer_name}"[:60]
        rows.append([button(label, ReviewAdmin(booking_id=r.booking_id, action=action).pack())])
    rows.append(back_to_menu(texts, locale))
    await show(event, text[:4000], InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "reviews"))
async def open_reviews(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    await callback.answer()
    await state.clear()
    await reviews_screen(callback, core, cache, texts, locale)


@routes.callback_query(ReviewAdmin.filter(F.action.in_({"h", "s", "H", "S"})))
async def hide_or_show(
    callback: CallbackQuery,
    callback_data: ReviewAdmin,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """Hide a review from the ratings or show it again: from its notice (the button flips) or
    from the reviews screen (redrawn)."""
    hidden = callback_data.action in {"h", "H"}
    review = await core.reviews.hide(callback_data.booking_id, hidden=hidden)
    if review is None:
        await callback.answer(texts(locale, "stale_button"))
        return
    await callback.answer(texts(locale, "review_hidden" if hidden else "review_shown"))
    if callback_data.action.isupper():
        await reviews_screen(callback, core, cache, texts, locale)
    elif isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=review_buttons(texts, locale, review))


@routes.callback_query(ReviewAdmin.filter(F.action == "t"))
async def toggle_requests(
    callback: CallbackQuery, core: BookingCore, cache: CatalogueReader, texts: BotTexts, locale: str
) -> None:
    current = await core.reviews.settings()
    await core.reviews.update_settings(reviews_enabled=not current.reviews_enabled)
    await callback.answer(texts(locale, "adm_saved"))
    await reviews_screen(callback, core, cache, texts, locale)


@routes.callback_query(ReviewAdmin.filter(F.action == "n"))
async def ask_threshold(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=ReviewFlow.threshold,
        prompt=texts(locale, "adm_ask_review_threshold"),
        back=back_to_menu(texts, locale, "reviews"),
    )


@routes.message(ReviewFlow.threshold, F.text)
async def save_threshold(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    text = (message.text or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        await message.answer(texts(locale, "adm_ask_review_threshold"))
        return
    await core.reviews.update_settings(review_min_count=int(text))
    await state.clear()
    await message.answer(texts(locale, "adm_saved"))
    await reviews_screen(message, core, cache, texts, locale)
