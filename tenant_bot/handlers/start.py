"""/start, /help and the main menu."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from kit.routing import Routes
from schemas.runtime import TenantRuntime
from tenant_bot.booking import BookingCore, CatalogueReader
from tenant_bot.callbacks import Menu
from tenant_bot.handlers.common import show, welcome
from tenant_bot.keyboards import main_menu
from tenant_bot.outreach_views import rating_line
from tenant_bot.texts import BotTexts

routes = Routes("start")


@routes.message(CommandStart())
async def start(
    message: Message,
    state: FSMContext,
    texts: BotTexts,
    cache: CatalogueReader,
    core: BookingCore,
    runtime: TenantRuntime,
    locale: str,
    is_owner: bool,
) -> None:
    """The business's welcome and profile (with its rating past the owner's threshold), then the
    menu; any conversation in progress ends."""
    await state.clear()
    settings = await cache.settings()
    text = welcome(texts, locale, settings, runtime.display_name or runtime.slug)
    rating = rating_line(texts, locale, (await core.reviews.ratings()).business)
    if rating:
        text += "\n\n" + rating
    await message.answer(text, reply_markup=ReplyKeyboardRemove())
    await message.answer(
        texts(locale, "menu"), reply_markup=main_menu(texts, locale, is_owner=is_owner)
    )


@routes.message(Command("help"))
async def help_command(message: Message, texts: BotTexts, locale: str, is_owner: bool) -> None:
    await message.answer(
        texts(locale, "help", is_owner=is_owner),
        reply_markup=main_menu(texts, locale, is_owner=is_owner),
    )


@routes.callback_query(Menu.filter(F.action == "help"))
async def help_button(
    callback: CallbackQuery, texts: BotTexts, locale: str, is_owner: bool
) -> None:
    await callback.answer()
    await show(
        callback,
        texts(locale, "help", is_owner=is_owner),
        main_menu(texts, locale, is_owner=is_owner),
    )


@routes.callback_query(Menu.filter(F.action == "home"))
async def home(
    callback: CallbackQuery, state: FSMContext, texts: BotTexts, locale: str, is_owner: bool
) -> None:
    """Back to the main menu from anywhere (ends the conversation in progress)."""
    await state.clear()
    await callback.answer()
    await show(callback, texts(locale, "menu"), main_menu(texts, locale, is_owner=is_owner))


@routes.callback_query(Menu.filter(F.action == "noop"))
async def noop(callback: CallbackQuery) -> None:
    """Calendar headers and blanks: nothing to do, but stop the button's spinner."""
    await callback.answer()
