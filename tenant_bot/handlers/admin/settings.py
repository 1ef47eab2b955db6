"""Booking rules: notice, horizon, buffers, slot step, cancel/reschedule notice, limit, reminders,
and whether the owner confirms bookings."""

from __future__ import annotations

import re

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.models import BusinessSettings
from tenant_bot.callbacks import Admin, Setting
from tenant_bot.handlers.admin.common import (
    ask_for_input,
    back_to_menu,
    change_or_explain,
    input_saved,
)
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.states import OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("admin_settings")

# Callback name -> settings field; values typed in minutes (days for the horizon).
NUMERIC = {
    "notice": "min_notice_minutes",
    "horizon": "horizon_days",
    "before": "buffer_before_minutes",
    "after": "buffer_after_minutes",
    "step": "slot_step_minutes",
    "cancel": "cancel_notice_minutes",
    "move": "reschedule_notice_minutes",
    "limit": "max_active_per_customer",
}
_OFFSET = re.compile(r"^(\d+)\s*([mhdмчд]?)")
_UNITS = {"": 1, "m": 1, "м": 1, "h": 60, "ч": 60, "d": 1440, "д": 1440}


def parse_offsets(text: str) -> list[int]:
    """``24h, 2h`` / ``1440, 120`` / ``1d 30m`` -> minutes; ``-`` -> no reminders."""
    if text.strip() in {"-", "—"}:
        return []
    offsets = []
    for part in re.split(r"[,;\s]+", text.strip().lower()):
        if not part:
            continue
        match = _OFFSET.fullmatch(part)
        if not match:
            raise ValueError(part)
        offsets.append(int(match.group(1)) * _UNITS[match.group(2)])
    return offsets


def _offsets(texts: BotTexts, locale: str, settings: BusinessSettings) -> str:
    return ", ".join(texts.duration(locale, m) for m in settings.reminder_offsets_minutes) or "—"


async def settings_screen(
    event: CallbackQuery | Message, settings: BusinessSettings, texts: BotTexts, locale: str
) -> None:
    values = {name: getattr(settings, field) for name, field in NUMERIC.items()}
    text = texts(
        locale,
        "adm_settings",
        **values,
        confirm=settings.confirmation_required,
        reminders=_offsets(texts, locale, settings),
        timezone=texts.zone(locale, settings.time_zone),
    )
    rows = [
        [button(texts(locale, f"adm_set_{name}"), Setting(name=name).pack())] for name in NUMERIC
    ]
    rows.append([button(texts(locale, "adm_set_reminders"), Setting(name="reminders").pack())])
    rows.append(
        [
            button(
                texts(locale, "adm_set_confirm", on=settings.confirmation_required),
                Setting(name="confirm").pack(),
            )
        ]
    )
    rows.append(back_to_menu(texts, locale))
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "settings"))
async def settings(
    callback: CallbackQuery, state: FSMContext, cache: CatalogueReader, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    await settings_screen(callback, await cache.settings(), texts, locale)


@routes.callback_query(Setting.filter(F.name == "confirm"))
async def toggle_confirmation(
    callback: CallbackQuery, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    current = await core.catalogue.get_settings()
    updated = await core.catalogue.update_settings(
        confirmation_required=not current.confirmation_required
    )
    await callback.answer(texts(locale, "adm_saved"))
    await settings_screen(callback, updated, texts, locale)


@routes.callback_query(Setting.filter(F.name.in_({*NUMERIC, "reminders"})))
async def ask_value(
    callback: CallbackQuery, callback_data: Setting, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.setting,
        prompt=texts(locale, f"adm_ask_{callback_data.name}"),
        back=back_to_menu(texts, locale, "settings"),
        data={"setting": callback_data.name},
    )


@routes.message(OwnerInput.setting, F.text)
async def save_value(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    name = (await state.get_data()).get("setting", "")
    text = (message.text or "").strip()
    try:
        if name == "reminders":
            changes: dict[str, object] = {"reminder_offsets_minutes": parse_offsets(text)}
        else:
            changes = {NUMERIC[name]: int(text)}
    except (ValueError, KeyError):
        await message.answer(texts(locale, "adm_bad_number"))
        return
    updated = await change_or_explain(
        message, texts, locale, core.catalogue.update_settings(**changes)
    )
    if updated is None:
        return
    await input_saved(message, state, texts, locale)
    await settings_screen(message, updated, texts, locale)
