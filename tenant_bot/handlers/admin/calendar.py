"""The owner's schedule as a calendar file: today, tomorrow, this week or next week (``.ics``)."""

from __future__ import annotations

from datetime import date, timedelta

from aiogram import F
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import BookingStatus, Clock
from tenant_bot.calendar_files import schedule_file
from tenant_bot.callbacks import Admin, CalendarFile
from tenant_bot.handlers.admin.common import back_to_menu
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.notifications import Notifier
from tenant_bot.texts import BotTexts
from tenant_bot.views import local_today

routes = Routes("admin_calendar")
PERIODS = ("today", "tomorrow", "week", "next")


def period_days(period: str, today: date) -> tuple[date, date]:
    """The local days of a period, first and last included."""
    if period == "today":
        return today, today
    if period == "tomorrow":
        return today + timedelta(days=1), today + timedelta(days=1)
    monday = today - timedelta(days=today.weekday())
    if period == "week":
        return monday, monday + timedelta(days=6)
    if period == "next":
        return monday + timedelta(days=7), monday + timedelta(days=13)
    raise ValueError(period)


@routes.callback_query(Admin.filter(F.section == "ics"))
async def calendar_menu(callback: CallbackQuery, texts: BotTexts, locale: str) -> None:
    await callback.answer()
    rows = [[button(texts(locale, f"adm_ics_{p}"), CalendarFile(period=p).pack())] for p in PERIODS]
    rows.append(back_to_menu(texts, locale))
    await show(callback, texts(locale, "adm_ics_title"), InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(CalendarFile.filter(F.period.in_(PERIODS)))
async def send_schedule(
    callback: CallbackQuery,
    callback_data: CalendarFile,
    core: BookingCore,
    cache: CatalogueReader,
    notifier: Notifier,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """One ``.ics`` with every booking of the period that counts (cancelled ones left out)."""
    await callback.answer()
    settings = await cache.settings()
    first, last = period_days(callback_data.period, local_today(settings, clock))
    bookings = await core.reports.bookings(first, last)
    moved = await core.calendar.times_moved([d.booking.id for d in bookings])
    title = texts(
        locale,
        "adm_ics_name",
        business=settings.business_name,
        day_from=texts.day(locale, first),
        day_to=texts.day(locale, last),
    )
    body = schedule_file(
        bookings,
        moved,
        texts=texts,
        locale=locale,
        prefix=notifier.prefix,
        settings=settings,
        title=title,
        now=clock(),
    )
    count = sum(1 for d in bookings if d.booking.status is not BookingStatus.CANCELLED)
    assert callback.message is not None
    name = f"schedule-{first:%Y-%m-%d}" + ("" if first == last else f"-{last:%Y-%m-%d}")
    await callback.message.answer_document(
        BufferedInputFile(body, filename=f"{name}.ics"),
        caption=texts(locale, "adm_ics_caption", count=count, period=title),
    )
