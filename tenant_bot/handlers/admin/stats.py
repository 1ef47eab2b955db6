"""The owner's statistics: this week, this month, the last 30 days or typed dates, as a chart of
the busiest hours (a PNG drawn in a worker thread) and the numbers as text."""

from __future__ import annotations

import asyncio
from datetime import date

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.analytics import Ranked, Stats
from tenant_bot.booking.models import Clock
from tenant_bot.callbacks import Admin, StatsRange
from tenant_bot.charts import bar_chart
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu, parse_day_range
from tenant_bot.handlers.admin.export import MAX_RANGE_DAYS, period_range
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts
from tenant_bot.views import local_today

routes = Routes("admin_stats")
PERIODS = ("week", "month", "last30")


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _ranking(texts: BotTexts, locale: str, items: tuple[Ranked, ...], currency: str) -> str:
    return "\n".join(
        texts(
            locale,
            "adm_stats_rank",
            count=n,
            name=item.name,
            bookings=item.bookings,
            amount=texts.money(item.revenue, currency),
        )
        for n, item in enumerate(items, start=1)
    )


def stats_text(texts: BotTexts, locale: str, stats: Stats) -> str:
    busiest = sorted(stats.by_hour, key=lambda h: (-stats.by_hour[h], h))[:3]
    return texts(
        locale,
        "adm_stats",
        day_from=texts.day(locale, stats.day_from),
        day_to=texts.day(locale, stats.day_to),
        booked=stats.booked,
        done=stats.done,
        no_show=stats.no_show,
        cancelled=stats.cancelled,
        no_show_rate=_percent(stats.no_show_rate),
        cancel_rate=_percent(stats.cancellation_rate),
        revenue=texts.money(stats.revenue, stats.currency),
        expected=texts.money(stats.expected, stats.currency),
        kept=texts.money(stats.kept, stats.currency) if stats.kept else "",
        customers=stats.customers,
        new=stats.new_customers,
        returning=stats.returning_customers,
        services=_ranking(texts, locale, stats.top_services, stats.currency),
        staff=_ranking(texts, locale, stats.top_staff, stats.currency),
        hours=", ".join(f"{h:02d}:00" for h in busiest),
    )


def hours_chart(stats: Stats) -> bytes:
    """Bookings per starting hour, from the first to the last hour with any."""
    first, last = min(stats.by_hour), max(stats.by_hour)
    return bar_chart([(str(h), stats.by_hour.get(h, 0)) for h in range(first, last + 1)])


async def send_stats(
    message: Message, core: BookingCore, texts: BotTexts, locale: str, day_from: date, day_to: date
) -> None:
    stats = await core.analytics.stats(day_from, day_to)
    if stats.by_hour:
        png = await asyncio.to_thread(hours_chart, stats)
        await message.answer_photo(
            BufferedInputFile(png, filename="hours.png"),
            caption=texts(locale, "adm_stats_chart"),
        )
    await message.answer(
        stats_text(texts, locale, stats),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[back_to_menu(texts, locale, "stats")]),
    )


@routes.callback_query(Admin.filter(F.section == "stats"))
async def stats_menu(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    rows = [
        [button(texts(locale, f"adm_export_{p}"), StatsRange(period=p).pack())]
        for p in (*PERIODS, "custom")
    ]
    rows.append(back_to_menu(texts, locale))
    await show(
        callback, texts(locale, "adm_stats_title"), InlineKeyboardMarkup(inline_keyboard=rows)
    )


@routes.callback_query(StatsRange.filter(F.period.in_(PERIODS)))
async def stats_period(
    callback: CallbackQuery,
    callback_data: StatsRange,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await callback.answer()
    day_from, day_to = period_range(
        callback_data.period, local_today(await cache.settings(), clock)
    )
    assert isinstance(callback.message, Message)
    await send_stats(callback.message, core, texts, locale, day_from, day_to)


@routes.callback_query(StatsRange.filter(F.period == "custom"))
async def ask_range(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.stats_range,
        prompt=texts(locale, "adm_ask_range"),
        back=back_to_menu(texts, locale, "stats"),
    )


@routes.message(OwnerInput.stats_range, F.text)
async def stats_custom(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    today = local_today(await cache.settings(), clock)
    try:
        day_from, day_to = parse_day_range(message.text or "", today=today, max_days=MAX_RANGE_DAYS)
    except ValueError:
        await message.answer(texts(locale, "adm_bad_range"))
        return
    await state.clear()
    await send_stats(message, core, texts, locale, day_from, day_to)
