"""What reviews and mailings look like (issue 20): stars, ratings, audiences, progress, keyboards."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup

from tenant_bot.booking.outreach import Audience, AudienceChoice, BroadcastCounts, Rating
from tenant_bot.callbacks import Mailing, MailingAdmin, Rate
from tenant_bot.keyboards import button
from tenant_bot.texts import BotTexts


def stars(count: int) -> str:
    """``★★★★☆`` for 4."""
    return "★" * count + "☆" * (5 - count)


def average(locale: str, value: float) -> str:
    """``4.8`` / ``4,8`` (one decimal, the locale's separator)."""
    text = f"{value:.1f}"
    return text.replace(".", ",") if locale == "ru" else text


def rating_line(texts: BotTexts, locale: str, rating: Rating | None) -> str:
    """The business's rating for a welcome screen, or "" below the owner's threshold."""
    if rating is None:
        return ""
    return texts(
        locale, "rating_business", average=average(locale, rating.average), count=rating.count
    )


def stars_keyboard(texts: BotTexts, locale: str, booking_id: int) -> InlineKeyboardMarkup:
    """One row of five buttons, 1 to 5 stars."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    texts(locale, "btn_stars", stars=n), Rate(booking_id=booking_id, stars=n).pack()
                )
                for n in range(1, 6)
            ]
        ]
    )


def audience_label(
    texts: BotTexts, locale: str, choice: AudienceChoice, service_name: str = ""
) -> str:
    """``visited in the last 30 days``, ``booked “Haircut”``..."""
    if choice.kind is Audience.RECENT:
        return texts(locale, "audience_recent", days=choice.days)
    if choice.kind is Audience.LAPSED:
        return texts(locale, "audience_lapsed", days=choice.days)
    if choice.kind is Audience.SERVICE:
        return texts(locale, "audience_service", service=service_name or "—")
    return texts(locale, "audience_all")


def unsubscribe_keyboard(
    texts: BotTexts, locale: str, *, subscribed: bool = True
) -> InlineKeyboardMarkup:
    """The one button under every mailing: unsubscribe (or, after a tap, subscribe again)."""
    if subscribed:
        return InlineKeyboardMarkup(
            inline_keyboard=[
                [button(texts(locale, "btn_unsubscribe"), Mailing(action="off").pack())]
            ]
        )
    return InlineKeyboardMarkup(
        inline_keyboard=[[button(texts(locale, "btn_subscribe"), Mailing(action="on").pack())]]
    )


def progress_text(
    texts: BotTexts, locale: str, audience: str, counts: BroadcastCounts, *, status: str
) -> str:
    """The owner's progress message while sending, or the final report once it has ended."""
    values = {
        "audience": audience,
        "total": counts.total,
        "sent": counts.sent,
        "blocked": counts.blocked,
        "failed": counts.failed,
        "skipped": counts.skipped,
    }
    if status == "sending":
        return texts(locale, "mailing_progress", **values)
    return texts(locale, "mailing_report", **values, status=status)


def stop_keyboard(texts: BotTexts, locale: str, broadcast_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    texts(locale, "btn_mailing_stop"),
                    MailingAdmin(action="stop", value=str(broadcast_id)).pack(),
                )
            ]
        ]
    )


async def send_mailing(
    bot: Bot, chat_id: int, *, text: str, photo_file_id: str | None, markup: InlineKeyboardMarkup
) -> None:
    """One mailing message: a photo with the text as its caption, or the text alone."""
    if photo_file_id:
        await bot.send_photo(chat_id, photo_file_id, caption=text or None, reply_markup=markup)
    else:
        await bot.send_message(chat_id, text, reply_markup=markup)
