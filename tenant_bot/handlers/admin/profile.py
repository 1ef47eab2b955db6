"""The business profile shown in /start and in confirmations: name, description, address, phone,
map link and welcome text."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore
from tenant_bot.booking.models import BusinessSettings
from tenant_bot.bot_name import publish_name
from tenant_bot.callbacks import Admin, Profile
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

routes = Routes("admin_profile")

FIELDS = {
    "name": ("business_name", 200),
    "desc": ("description", 4000),
    "addr": ("address", 500),
    "phone": ("phone", 40),
    "map": ("map_url", 1000),
    "welcome": ("welcome_text", 4000),
}


async def profile_screen(
    event: CallbackQuery | Message, settings: BusinessSettings, texts: BotTexts, locale: str
) -> None:
    text = texts(
        locale,
        "adm_profile",
        name=settings.business_name,
        description=settings.description,
        address=settings.address,
        phone=settings.phone,
        map_url=settings.map_url,
        welcome=settings.welcome_text,
    )
    rows = [
        [button(texts(locale, f"adm_profile_{key}"), Profile(field=key).pack())] for key in FIELDS
    ]
    rows.append(back_to_menu(texts, locale))
    await show(event, text[:4000], InlineKeyboardMarkup(inline_keyboard=rows))


@routes.callback_query(Admin.filter(F.section == "profile"))
async def profile(
    callback: CallbackQuery, state: FSMContext, core: BookingCore, texts: BotTexts, locale: str
) -> None:
    await callback.answer()
    await state.clear()
    await profile_screen(callback, await core.catalogue.get_settings(), texts, locale)


@routes.callback_query(Profile.filter(F.field.in_(set(FIELDS))))
async def ask(
    callback: CallbackQuery, callback_data: Profile, state: FSMContext, texts: BotTexts, locale: str
) -> None:
    field = texts(locale, f"adm_profile_{callback_data.field}")
    await ask_for_input(
        callback,
        state,
        input_state=OwnerInput.profile,
        prompt=texts(locale, "adm_ask_profile", field=field),
        back=back_to_menu(texts, locale, "profile"),
        data={"field": callback_data.field},
    )


@routes.message(OwnerInput.profile, F.text)
async def save(
    message: Message,
    state: FSMContext,
    core: BookingCore,
    texts: BotTexts,
    locale: str,
) -> None:
    """Save the typed value (``-`` clears the field); the phone is validated by the core."""
    key = (await state.get_data()).get("field", "")
    if key not in FIELDS:
        await state.clear()
        return
    field, limit = FIELDS[key]
    value = (message.text or "").strip()
    value = "" if value == "-" else value
    if len(value) > limit:
        await message.answer(texts(locale, "adm_too_long", limit=limit))
        return
    if key == "map" and value and not value.startswith(("http://", "https://")):
        await message.answer(texts(locale, "adm_bad_url"))
        return
    updated = await change_or_explain(
        message, texts, locale, core.catalogue.update_settings(**{field: value})
    )
    if updated is None:
        return
    if field == "business_name" and message.bot is not None:
        await publish_name(message.bot, updated.business_name)
    await input_saved(message, state, texts, locale)
    await profile_screen(message, updated, texts, locale)
