"""/language: the customer picks the bot's language (remembered, and used for their reminders; a
linked staff member's /staff command menu follows it)."""

from __future__ import annotations

from aiogram import Bot, F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from kit.routing import Routes
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.callbacks import Language, Menu
from tenant_bot.commands import set_staff_menu
from tenant_bot.handlers.common import show, stale
from tenant_bot.keyboards import languages, main_menu
from tenant_bot.middlewares.locale import LocaleStore
from tenant_bot.texts import BotTexts

routes = Routes("language")


@routes.message(Command("language"))
async def language_command(message: Message, texts: BotTexts, locale: str) -> None:
    await message.answer(texts(locale, "choose_language"), reply_markup=languages(texts, locale))


@routes.callback_query(Menu.filter(F.action == "lang"))
async def language_menu(callback: CallbackQuery, texts: BotTexts, locale: str) -> None:
    await callback.answer()
    await show(callback, texts(locale, "choose_language"), languages(texts, locale))


@routes.callback_query(Language.filter())
async def set_language(
    callback: CallbackQuery,
    callback_data: Language,
    bot: Bot,
    texts: BotTexts,
    locales: LocaleStore,
    core: BookingCore,
    cache: CatalogueReader,
    locale: str,
    is_owner: bool,
) -> None:
    if callback_data.code not in texts.locales:
        await stale(callback, texts, locale, is_owner=is_owner)
        return
    new = callback_data.code
    await locales.set(callback.from_user.id, new)
    await core.customers.register(callback.from_user.id, locale=new)
    user_id = callback.from_user.id
    if not is_owner and any(
        m.active and m.telegram_user_id == user_id for m in await cache.all_staff()
    ):
        await set_staff_menu(bot, texts=texts, chat_id=user_id, locale=new)
    await callback.answer(texts(new, "language_set"))
    await show(callback, texts(new, "menu"), main_menu(texts, new, is_owner=is_owner))
