"""A staff member's weekly hours: a day typed as people write it (``9-18``, ``9:00–18:00``), then
copied to other days in one tap (Monday to Friday, every day, or days the owner ticks)."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import WEEK, WORKWEEK, BookingCore, parse_day_hours
from tenant_bot.booking.errors import BookingError
from tenant_bot.booking.models import WorkInterval
from tenant_bot.callbacks import Hours, HoursCopy, StaffEdit
from tenant_bot.handlers.admin.common import ask_for_input
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_hours")

_ALL_DAYS = (1 << 7) - 1


def weekday_hours(texts: BotTexts, locale: str, weekday: str, intervals: list[WorkInterval]) -> str:
    """``Mon: 09:00-13:00, 14:00-18:00`` (or the day-off word)."""
    return f"{weekday}: " + (", ".join(str(i) for i in intervals) or texts(locale, "adm_day_off"))


def _to_hours(texts: BotTexts, locale: str, staff_id: int, key: str) -> InlineKeyboardButton:
    return button(texts(locale, key), StaffEdit(staff_id=staff_id, action="h").pack())


async def hours_screen(
    event: CallbackQuery | Message,
    staff_id: int,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
    *,
    note: str = "",
) -> None:
    """The week as buttons, one per day (tap to change it), under ``note`` if any."""
    member = await core.catalogue.get_staff(staff_id)
    week = await core.catalogue.get_working_hours(member.id)
    rows = [
        [
            button(
                weekday_hours(texts, locale, name, week.get(wd, [])),
                Hours(staff_id=member.id, weekday=wd).pack(),
            )
        ]
        for wd, name in enumerate(texts.weekday_names(locale))
    ]
    rows.append(
        [
            button(
                texts(locale, "adm_date_hours_btn"),
                StaffEdit(staff_id=member.id, action="dh").pack(),
            )
        ]
    )
    rows.append([button(texts(locale, "btn_back"), StaffEdit(staff_id=member.id).pack())])
    title = texts(locale, "adm_hours_title", name=member.name)
    await show(
        event, f"{note}\n\n{title}" if note else title, InlineKeyboardMarkup(inline_keyboard=rows)
    )


@routes.callback_query(StaffEdit.filter(F.action == "h"))
async def hours(
    callback: CallbackQuery,
    callback_data: StaffEdit,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    await callback.answer()
    await state.clear()
    await hours_screen(callback, callback_data.staff_id, core, texts, locale)


@routes.callback_query(Hours.filter())
async def ask_hours(
    callback: CallbackQuery, callback_data: Hours, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    if not 0 <= callback_data.weekday <= 6:
        raise ValueError("weekday out of range")
    day = texts.weekday_names(locale)[callback_data.weekday]
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.hours,
        prompt=texts(locale, "adm_ask_hours", day=day),
        back=[_to_hours(texts, locale, callback_data.staff_id, "btn_back")],
        data={"staff_id": callback_data.staff_id, "weekday": callback_data.weekday},
    )


@routes.message(OwnerInput.hours, F.text)
async def save_hours(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """Store the day (a clear error, saying the expected form, leaves the owner typing), then
    offer to copy it to other days."""
    data = await state.get_data()
    staff_id, weekday = data["staff_id"], data["weekday"]
    try:
        intervals = parse_day_hours(message.text or "")
        await core.catalogue.set_working_hours(staff_id, weekday, intervals)
    except BookingError as exc:
        await message.answer(error_text(texts, locale, exc))
        return
    await state.clear()
    line = weekday_hours(texts, locale, texts.weekday_names(locale)[weekday], intervals)

    def copy(to: str) -> str:
        return HoursCopy(staff_id=staff_id, weekday=weekday, to=to).pack()

    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(texts(locale, "adm_copy_workweek"), copy("w")),
                button(texts(locale, "adm_copy_week"), copy("a")),
            ],
            [button(texts(locale, "adm_copy_pick"), copy("p"))],
            [_to_hours(texts, locale, staff_id, "adm_copy_done")],
        ]
    )
    await message.answer(texts(locale, "adm_copy_offer", line=line), reply_markup=markup)


@routes.callback_query(HoursCopy.filter(F.to == "p"))
async def pick_days(
    callback: CallbackQuery, callback_data: HoursCopy, texts: BotTexts, locale: str
) -> None:
    """Tick the days to copy to (each tap flips one), then Copy."""
    names = texts.weekday_names(locale)
    source, ticked = callback_data.weekday, callback_data.days & _ALL_DAYS
    if not 0 <= source <= 6:
        raise ValueError("weekday out of range")

    def tick(day: int) -> InlineKeyboardButton:
        mark = "✅ " if ticked >> day & 1 else "▫️ "
        flipped = HoursCopy(
            staff_id=callback_data.staff_id, weekday=source, to="p", days=ticked ^ 1 << day
        )
        return button(mark + names[day], flipped.pack())

    others = [tick(day) for day in WEEK if day != source]
    go = HoursCopy(staff_id=callback_data.staff_id, weekday=source, to="g", days=ticked)
    rows = [
        others[:3],
        others[3:],
        [button(texts(locale, "adm_copy_go"), go.pack())],
        [_to_hours(texts, locale, callback_data.staff_id, "btn_back")],
    ]
    await callback.answer()
    await show(
        callback,
        texts(locale, "adm_copy_pick_title", day=names[source]),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


@routes.callback_query(HoursCopy.filter(F.to.in_({"w", "a", "g"})))
async def copy_hours(
    callback: CallbackQuery,
    callback_data: HoursCopy,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """Copy the day's hours to Monday-Friday, every day or the ticked days; show the week."""
    source = callback_data.weekday
    targets = {
        "w": WORKWEEK,
        "a": WEEK,
        "g": tuple(day for day in WEEK if callback_data.days >> day & 1),
    }[callback_data.to]
    targets = tuple(day for day in targets if day != source)
    if not targets:
        await callback.answer(texts(locale, "adm_copy_none"), show_alert=True)
        return
    await core.catalogue.copy_working_hours(callback_data.staff_id, source, targets)
    await callback.answer()
    names = texts.weekday_names(locale)
    note = texts(
        locale,
        "adm_hours_copied",
        day=names[source],
        days=", ".join(names[day] for day in targets),
    )
    await hours_screen(callback, callback_data.staff_id, core, texts, locale, note=note)
