"""Booking rules: notice, horizon, buffers, slot step, cancel/reschedule notice, limit, reminders,
whether the owner confirms bookings, releasing unconfirmed bookings and the no-show rule."""

from __future__ import annotations

import re

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.booking.errors import BookingError, InvalidInput
from tenant_bot.booking.models import BusinessSettings, NoShowAction
from tenant_bot.callbacks import Admin, Setting
from tenant_bot.handlers.admin.common import (
    ask_for_input,
    back_to_menu,
    input_saved,
)
from tenant_bot.handlers.common import show
from tenant_bot.keyboards import button
from tenant_bot.middlewares.errors import error_text
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
# Typed values of the "reminders that ask" settings (issue 19): hours or "-" (off), a count.
ATTENDANCE = {"release": "release_unconfirmed_hours", "noshow_n": "no_show_threshold"}
_NEXT_ACTION = {
    NoShowAction.OFF: NoShowAction.DEPOSIT,
    NoShowAction.DEPOSIT: NoShowAction.BLOCK,
    NoShowAction.BLOCK: NoShowAction.OFF,
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
    text += "\n" + texts(
        locale,
        "adm_settings_attendance",
        release=settings.release_unconfirmed_hours or 0,
        action=texts(locale, f"adm_noshow_{settings.no_show_action}"),
        threshold=settings.no_show_threshold,
    )
    rows += [
        [button(texts(locale, f"adm_set_{name}"), Setting(name=name).pack())] for name in ATTENDANCE
    ]
    # the button names the action it sets, so a double tap sets it twice instead of moving on
    following = _NEXT_ACTION[NoShowAction(settings.no_show_action)].value
    rows.append(
        [button(texts(locale, "adm_set_noshow"), Setting(name=f"noshow_{following}").pack())]
    )
    rows.append(
        [button(texts(locale, "adm_pay_btn"), Admin(section="payments").pack())]
    )  # deposits
    # reviews: whether to ask, and from how many reviews ratings show (issue 20)
    rows.append([button(texts(locale, "adm_btn_reviews"), Admin(section="reviews").pack())])
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


@routes.callback_query(Setting.filter(F.name.in_({f"noshow_{a.value}" for a in NoShowAction})))
async def set_no_show_action(
    callback: CallbackQuery, callback_data: Setting, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    """What happens to repeat no-shows; the button steps nothing -> deposit -> block -> nothing."""
    action = callback_data.name.removeprefix("noshow_")
    updated = await core.catalogue.update_settings(no_show_action=action)
    await callback.answer(texts(locale, "adm_saved"))
    await settings_screen(callback, updated, texts, locale)


@routes.callback_query(Setting.filter(F.name.in_({*NUMERIC, *ATTENDANCE, "reminders"})))
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
        changes = _typed_change(name, text)
    except _BadValue as bad:
        values = {} if bad.key == "adm_bad_number" else {"value": bad.value[:40]}
        await message.answer(texts(locale, bad.key, **values))
        return
    try:
        updated = await core.catalogue.update_settings(**changes)
    except BookingError as exc:  # refused: say what to fix, the owner may type again
        key = _REFUSED.get(exc.field) if isinstance(exc, InvalidInput) else None
        explained = (
            error_text(texts, locale, exc)
            if key is None
            else texts(locale, key, first=_hours(exc.details))
        )
        await message.answer(explained)
        return
    await input_saved(message, state, texts, locale)
    await settings_screen(message, updated, texts, locale)


class _BadValue(ValueError):
    """A typed value that is not of the asked form: ``key`` is the text explaining the form."""

    def __init__(self, key: str, value: str) -> None:
        super().__init__(value)
        self.key = key
        self.value = value


# the core's refusals of well-formed values, by field: what to fix
_REFUSED = {
    "reminder_offsets_minutes": "adm_bad_offsets_range",
    "release_unconfirmed_hours": "adm_bad_release",
    "no_show_threshold": "adm_bad_noshow_n",
}


def _typed_change(name: str, text: str) -> dict[str, object]:
    """The settings change a typed value asks for; :class:`_BadValue` if it cannot be read."""
    if name == "reminders":
        try:
            return {"reminder_offsets_minutes": parse_offsets(text)}
        except ValueError as exc:
            raise _BadValue("adm_bad_offsets", str(exc)) from exc
    if name == "release" and text in {"-", "—", "0"}:
        return {"release_unconfirmed_hours": None}
    field = NUMERIC.get(name) or ATTENDANCE.get(name)
    if field is None:
        raise _BadValue("adm_bad_number", text)
    try:
        return {field: int(text.removesuffix("h").removesuffix("ч").strip())}
    except ValueError as exc:
        key = {"release": "adm_bad_release", "noshow_n": "adm_bad_noshow_n"}.get(
            name, "adm_bad_number"
        )
        raise _BadValue(key, text) from exc


def _hours(details: dict[str, object]) -> str:
    first = details.get("first_reminder_minutes")
    return f"{int(first) // 60}" if isinstance(first, int) else ""
