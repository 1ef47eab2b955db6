"""Public holidays: the owner switches the country's production calendar on (those days are closed,
moved working days are worked) and opens any single holiday with one tap."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore
from tenant_bot.booking.errors import BookingError
from tenant_bot.callbacks import Holidays, day_code, day_of
from tenant_bot.handlers.admin.common import ask_for_input, back_to_menu
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_holidays")

LISTED = 25


async def holidays_screen(
    event: CallbackQuery | Message, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    country, ahead = await core.holidays.ahead()
    if country is None:
        rows = [
            [button(texts(locale, "adm_hol_on_ru"), Holidays(action="on", country="RU").pack())],
            [button(texts(locale, "adm_hol_other"), Holidays(action="c").pack())],
        ]
        text = texts(locale, "adm_hol_off")
    else:
        rows = []
        for holiday in ahead[:LISTED]:
            mark = "✅" if holiday.opened else "⛔"
            label = f"{mark} {texts.day(locale, holiday.day)} · {holiday.name}"[:60]
            rows.append([button(label, Holidays(action="t", day=day_code(holiday.day)).pack())])
        rows.append([button(texts(locale, "adm_hol_switch_off"), Holidays(action="off").pack())])
        text = texts(locale, "adm_hol_on", country=country, count=len(ahead))
    rows.append(back_to_menu(texts, locale, "blocks"))
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Holidays.filter(F.action == "v"))
async def view(callback: CallbackQuery, core: BookingCore, texts: BotTexts, locale: str) -> None:
    await callback.answer()
    await holidays_screen(callback, core, texts, locale)


@routes.callback_query(Holidays.filter(F.action.in_({"on", "off"})))
async def switch(
    callback: CallbackQuery,
    callback_data: Holidays,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    country = callback_data.country if callback_data.action == "on" else None
    await core.holidays.switch(country)
    await callback.answer(texts(locale, "adm_saved"))
    await holidays_screen(callback, core, texts, locale)


@routes.callback_query(Holidays.filter(F.action == "c"))
async def ask_country(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.holiday_country,
        prompt=texts(locale, "adm_hol_ask_country"),
        back=[button(texts(locale, "btn_back"), Holidays(action="v").pack())],
    )


@routes.message(OwnerInput.holiday_country, F.text)
async def typed_country(
    message: Message, state: FSMContext, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    try:
        await core.holidays.switch(message.text or "")
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await state.clear()
    await holidays_screen(message, core, texts, locale)


@routes.callback_query(Holidays.filter(F.action == "t"))
async def toggle(
    callback: CallbackQuery,
    callback_data: Holidays,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """Open a closed holiday (the weekly hours apply), or close an opened one again."""
    day = day_of(callback_data.day)
    _, ahead = await core.holidays.ahead()
    holiday = next((h for h in ahead if h.day == day), None)
    if holiday is None:  # no longer ahead, or the calendar was switched off meanwhile
        await callback.answer(texts(locale, "stale_button"))
        await holidays_screen(callback, core, texts, locale)
        return
    await core.holidays.set_opened(day, opened=not holiday.opened)
    key = "adm_hol_closed" if holiday.opened else "adm_hol_opened"
    await callback.answer(texts(locale, key, day=texts.day(locale, day)))
    await holidays_screen(callback, core, texts, locale)
