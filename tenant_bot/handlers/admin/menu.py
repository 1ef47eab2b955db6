"""The owner menu and the schedule: today, tomorrow, a picked date, and bookings awaiting "came?"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from aiogram import F
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData, CallbackQueryFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from kit.routing import Handler, Routes
from tenant_bot import keyboards, views
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import BookingDetails, BusinessSettings, Clock
from tenant_bot.callbacks import Admin, Menu, Month, OwnerBooking, PickDay, day_code, day_of
from tenant_bot.handlers.admin.common import back_to_menu, owner_menu
from tenant_bot.handlers.common import show
from tenant_bot.texts import BotTexts
from tenant_bot.views import last_bookable_day, local_today, month_page

routes = Routes("admin_menu")

BackButton = Callable[[BotTexts, str], InlineKeyboardButton]
"""A calendar's back button in the reader's locale."""


@routes.message(Command("admin"))
@routes.callback_query(Menu.filter(F.action == "admin"))
@routes.callback_query(Admin.filter(F.section == "menu"))
async def menu(
    event: Message | CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    if isinstance(event, CallbackQuery):
        await event.answer()
    await state.clear()
    await show(event, texts(locale, "adm_menu"), owner_menu(texts, locale))


def _owner_card(booking_id: int) -> str:
    return OwnerBooking(booking_id=booking_id).pack()


def _booking_buttons(
    texts: BotTexts, locale: str, items: list[BookingDetails], settings: BusinessSettings, back: str
) -> InlineKeyboardMarkup:
    rows = views.booking_rows(texts, locale, items, settings, _owner_card)
    return InlineKeyboardMarkup(inline_keyboard=[*rows, back_to_menu(texts, locale, back)])


async def show_day(
    event: CallbackQuery | Message,
    day: date,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    """The bookings of one local day, each a button to its card."""
    text, markup = views.schedule_screen(
        texts,
        locale,
        await core.bookings.day_schedule(day),
        await cache.settings(),
        open_card=_owner_card,
        line_key="adm_schedule_line",
        bottom=[back_to_menu(texts, locale, "menu")],
    )
    await show(event, text, markup)


@routes.callback_query(Admin.filter(F.section.in_({"today", "tomorrow"})))
async def today_or_tomorrow(
    callback: CallbackQuery,
    callback_data: Admin,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await callback.answer()
    today = local_today(await cache.settings(), clock)
    day = today if callback_data.section == "today" else today + timedelta(days=1)
    await show_day(callback, day, core, cache, texts, locale)


async def admin_calendar(
    event: CallbackQuery,
    *,
    purpose: str,
    offset: int,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
    title_key: str,
    back: str | BackButton,
) -> None:
    """A month where every day from today to the horizon's end is tappable; ``back`` is an
    owner menu section, or the back button itself (a staff member's calendar)."""
    settings = await cache.settings()
    today = local_today(settings, clock)
    last = last_bookable_day(settings, clock) + timedelta(days=settings.horizon_days)
    year, month, offset, max_offset = month_page(today, last, offset)
    days = {today + timedelta(days=i) for i in range((last - today).days + 1)}
    markup = keyboards.month_calendar(
        texts,
        locale,
        year=year,
        month=month,
        offset=offset,
        max_offset=max_offset,
        today=today,
        last_day=last,
        free_days=days,
        purpose=purpose,
        back=back(texts, locale) if callable(back) else back_to_menu(texts, locale, back)[0],
    )
    await show(event, texts(locale, title_key), markup)


def owner_calendar(
    feature: Routes,
    opened_by: CallbackQueryFilter,
    *,
    purpose: str,
    title_key: str,
    back: str | BackButton,
) -> Handler:
    """Register on ``feature`` the handler that opens the owner's calendar (a tap matching
    ``opened_by``) and turns its months; a tapped day comes back as ``PickDay(purpose=...)``."""

    async def open_or_turn(
        callback: CallbackQuery,
        callback_data: CallbackData,
        cache: CatalogueReader,
        texts: BotTexts,
        clock: Clock,
        locale: str,
    ) -> None:
        await callback.answer()
        offset = callback_data.offset if isinstance(callback_data, Month) else 0
        await admin_calendar(
            callback,
            purpose=purpose,
            offset=offset,
            cache=cache,
            texts=texts,
            clock=clock,
            locale=locale,
            title_key=title_key,
            back=back,
        )

    feature.callback_query(Month.filter(F.purpose == purpose))(open_or_turn)
    feature.callback_query(opened_by)(open_or_turn)
    return open_or_turn


pick_day = owner_calendar(
    routes,
    Admin.filter(F.section == "pick"),
    purpose="a",
    title_key="adm_pick_day_title",
    back="menu",
)


@routes.callback_query(PickDay.filter(F.purpose == "a"))
async def picked_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    locale: str,
) -> None:
    day = day_of(callback_data.day)
    await callback.answer()
    await show_day(callback, day, core, cache, texts, locale)


@routes.callback_query(Admin.filter(F.section == "awaiting"))
async def awaiting(
    callback: CallbackQuery, core: BookingCore, cache: CatalogueReader, texts: BotTexts, locale: str
) -> None:
    """Ended bookings still waiting for "came / did not come"."""
    await callback.answer()
    settings = await cache.settings()
    items = await core.completion.awaiting(limit=40)
    key = "adm_awaiting_list" if items else "adm_awaiting_none"
    await show(
        callback,
        texts(locale, key, count=len(items)),
        _booking_buttons(texts, locale, items, settings, "menu"),
    )


__all__ = ["day_code", "owner_calendar", "routes", "show_day"]
