"""Export a date range of bookings as CSV and XLSX documents.

The rows come from the booking core; the files are built in a worker thread, so a year of bookings
does not stall other customers' taps.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import Clock
from tenant_bot.callbacks import Admin, Export
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu, parse_day_range
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts
from tenant_bot.views import local_today

routes = Routes("admin_export")
MAX_RANGE_DAYS = 366


def build_csv(rows: list[list[object]]) -> bytes:
    """UTF-8 with a BOM, so spreadsheet apps read Cyrillic names right."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def build_xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook  # heavy; only owners exporting pay for it

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("bookings")
    for row in rows:
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def period_range(period: str, today: date) -> tuple[date, date]:
    if period == "week":
        start = today - timedelta(days=today.weekday())
        return start, start + timedelta(days=6)
    if period == "month":
        start = today.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    if period == "last30":
        return today - timedelta(days=29), today
    raise ValueError(period)


@routes.callback_query(Admin.filter(F.section == "export"))
async def export_menu(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    rows = [
        [button(texts(locale, f"adm_export_{p}"), Export(period=p).pack())]
        for p in ("week", "month", "last30", "custom")
    ]
    rows.append(back_to_menu(texts, locale))
    await show(
        callback, texts(locale, "adm_export_title"), InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def send_export(
    message: Message, core: BookingCore, texts: BotTexts, locale: str, day_from: date, day_to: date
) -> None:
    rows = await core.reports.export_rows(day_from, day_to)
    csv_bytes, xlsx_bytes = await asyncio.gather(
        asyncio.to_thread(build_csv, rows), asyncio.to_thread(build_xlsx, rows)
    )
    name = f"bookings_{day_from:%Y%m%d}_{day_to:%Y%m%d}"
    caption = texts(
        locale,
        "adm_export_caption",
        day_from=texts.day(locale, day_from),
        day_to=texts.day(locale, day_to),
        count=len(rows) - 1,
    )
    await message.answer_document(
        BufferedInputFile(csv_bytes, filename=f"{name}.csv"), caption=caption
    )
    await message.answer_document(BufferedInputFile(xlsx_bytes, filename=f"{name}.xlsx"))


@routes.callback_query(Export.filter(F.period.in_({"week", "month", "last30"})))
async def export_period(
    callback: CallbackQuery,
    callback_data: Export,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await callback.answer(texts(locale, "adm_exporting"))
    day_from, day_to = period_range(
        callback_data.period, local_today(await cache.settings(), clock)
    )
    assert isinstance(callback.message, Message)
    await send_export(callback.message, core, texts, locale, day_from, day_to)


@routes.callback_query(Export.filter(F.period == "custom"))
async def ask_range(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.export_range,
        prompt=texts(locale, "adm_ask_range"),
        back=back_to_menu(texts, locale, "export"),
    )


@routes.message(OwnerInput.export_range, F.text)
async def export_custom(
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
    await send_export(message, core, texts, locale, day_from, day_to)
