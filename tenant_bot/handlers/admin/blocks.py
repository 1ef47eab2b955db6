"""Blocking time: a whole day from a calendar, or a typed period; and removing blocks."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import Clock
from tenant_bot.callbacks import Admin, Block, Holidays, PickDay, Vacation, day_of
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu, day_bounds, parse_period
from tenant_bot.handlers.admin.menu import owner_calendar
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts
from tenant_bot.views import local_today

routes = Routes("admin_blocks")


def _period_label(texts: BotTexts, locale: str, start: datetime, end: datetime) -> str:
    """``Fri 7 Mar 14:00–16:00`` in the zone ``start`` and ``end`` are given in."""
    return f"{texts.day(locale, start.date())} {start:%H:%M}–{end:%H:%M}"


async def blocks_screen(
    event: CallbackQuery | Message,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    settings = await cache.settings()
    now = clock()
    blocks = await core.catalogue.list_blocked_periods(now, now + timedelta(days=400))
    rows = []
    lines = []
    for block in blocks[:30]:
        start, end = (
            block.starts_at.astimezone(settings.zone),
            block.ends_at.astimezone(settings.zone),
        )
        label = _period_label(texts, locale, start, end)
        if (end - start) >= timedelta(hours=23):
            label = texts(locale, "adm_block_whole_day", day=texts.day(locale, start.date()))
        if (end - start) > timedelta(hours=25):  # a closure of several days
            last = (end - timedelta(microseconds=1)).date()
            label = f"{texts.day(locale, start.date())} – {texts.day(locale, last)}"
        lines.append(texts(locale, "adm_block_line", period=label, reason=block.reason))
        rows.append(
            [
                button(
                    texts(locale, "adm_unblock", period=label),
                    Block(action="rm", block_id=block.id).pack(),
                )
            ]
        )
        if (end - start) > timedelta(hours=25):  # its bookings, to move or cancel
            rows[-1].append(
                button(
                    texts(locale, "adm_closure_view"),
                    Vacation(action="v", block_id=block.id).pack(),
                )
            )
    rows.append([button(texts(locale, "adm_block_day"), Block(action="day").pack())])
    rows.append([button(texts(locale, "adm_block_period"), Block(action="period").pack())])
    rows.append([button(texts(locale, "adm_closure_btn"), Vacation(action="new").pack())])
    rows.append([button(texts(locale, "adm_hol_btn"), Holidays(action="v").pack())])
    rows.append(back_to_menu(texts, locale))
    text = texts(locale, "adm_blocks_title", count=len(blocks))
    if lines:
        text += "\n\n" + "\n".join(lines)
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "blocks"))
async def blocks(
    callback: CallbackQuery,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await callback.answer()
    await state.clear()
    await blocks_screen(callback, core, cache, texts, clock, locale)


pick_day = owner_calendar(
    routes,
    Block.filter(F.action == "day"),
    purpose="k",
    title_key="adm_block_pick",
    back="blocks",
)


@routes.callback_query(PickDay.filter(F.purpose == "k"))
async def block_day(
    callback: CallbackQuery,
    callback_data: PickDay,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    """Close the whole local day to new bookings (existing ones stay, the owner cancels them)."""
    day = day_of(callback_data.day)
    settings = await cache.settings()
    start, end = day_bounds(day, settings.zone)
    await core.catalogue.block_period(start, end)
    await callback.answer(
        texts(locale, "adm_blocked", period=texts.day(locale, day)), show_alert=True
    )
    await blocks_screen(callback, core, cache, texts, clock, locale)


@routes.callback_query(Block.filter(F.action == "period"))
async def ask_period(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.block_period,
        prompt=texts(locale, "adm_ask_period"),
        back=back_to_menu(texts, locale, "blocks"),
    )


@routes.message(OwnerInput.block_period, F.text)
async def block_period(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    settings = await cache.settings()
    try:
        start, end, reason = parse_period(
            message.text or "", today=local_today(settings, clock), zone=settings.zone
        )
    except ValueError:
        await message.answer(texts(locale, "adm_bad_period"))
        return
    try:
        await core.catalogue.block_period(start, end, reason=reason[:500])
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await state.clear()
    await message.answer(
        texts(locale, "adm_blocked", period=_period_label(texts, locale, start, end))
    )
    await blocks_screen(message, core, cache, texts, clock, locale)


@routes.callback_query(Block.filter(F.action == "rm"))
async def unblock(
    callback: CallbackQuery,
    callback_data: Block,
    core: BookingCore,
    cache: CatalogueReader,
    texts: BotTexts,
    clock: Clock,
    locale: str,
) -> None:
    await core.catalogue.unblock_period(callback_data.block_id)
    await callback.answer(texts(locale, "adm_unblocked"))
    await blocks_screen(callback, core, cache, texts, clock, locale)
