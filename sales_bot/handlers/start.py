"""/start, the main menu and cancelling a conversation."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from kit.routing import Routes
from sales_bot import keyboards
from sales_bot.callbacks import MenuAction, MenuCb, MyLanguageCb
from sales_bot.owner_locales import OwnerLocales
from templates import LOCALES, Texts

router = Routes("start")


@router.message(CommandStart())
async def start(message: Message, state: FSMContext, texts: Texts, locale: str) -> None:
    await state.clear()
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(
        texts(locale, "welcome", name=name), reply_markup=keyboards.main_menu(texts, locale)
    )


@router.message(Command("cancel"))
async def cancel_command(message: Message, state: FSMContext, texts: Texts, locale: str) -> None:
    await state.clear()
    await message.answer(texts(locale, "cancelled"))


@router.callback_query(MenuCb.filter(F.action == MenuAction.CANCEL))
async def cancel_button(query: CallbackQuery, state: FSMContext, texts: Texts, locale: str) -> None:
    await state.clear()
    await query.answer()
    if query.message is not None:
        await query.message.answer(texts(locale, "cancelled"))


@router.message(Command("language"))
async def language_command(message: Message, texts: Texts, locale: str) -> None:
    await message.answer(texts(locale, "my_language_prompt"), reply_markup=keyboards.my_language())


@router.callback_query(MenuCb.filter(F.action == MenuAction.LANGUAGE))
async def language_button(query: CallbackQuery, texts: Texts, locale: str) -> None:
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            texts(locale, "my_language_prompt"), reply_markup=keyboards.my_language()
        )


@router.callback_query(MyLanguageCb.filter())
async def language_chosen(
    query: CallbackQuery,
    callback_data: MyLanguageCb,
    texts: Texts,
    locale: str,
    owner_locales: OwnerLocales,
) -> None:
    if callback_data.locale not in LOCALES:
        await query.answer(texts(locale, "stale_button"), show_alert=True)
        return
    await owner_locales.choose(query.from_user, callback_data.locale)
    await query.answer()
    if query.message is not None:
        chosen = callback_data.locale
        await query.message.answer(
            texts(chosen, "my_language_set"), reply_markup=keyboards.main_menu(texts, chosen)
        )
