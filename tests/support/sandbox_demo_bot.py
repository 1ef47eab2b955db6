"""A small aiogram 3 bot used by the emulator tests: routers, inline buttons, FSM, documents."""

from __future__ import annotations

from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)


class Signup(StatesGroup):
    name = State()


def book_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Book", callback_data="book:10:00")],
            [InlineKeyboardButton(text="Site", url="https://example.org")],
        ]
    )


async def start(message: Message, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await message.answer(
        "<b>Welcome!</b> Pick a slot:", parse_mode="HTML", reply_markup=book_keyboard()
    )


async def broken_html(message: Message) -> None:
    try:
        await message.answer("<b>oops", parse_mode="HTML")
    except TelegramBadRequest as error:
        await message.answer(f"error: {error.message}")


async def document(message: Message) -> None:
    report = BufferedInputFile(b"date,client\n2024-05-01,Ann\n", filename="bookings.csv")
    await message.answer_document(report, caption="Today's bookings")


async def book(query: CallbackQuery) -> None:
    slot = (query.data or "").removeprefix("book:")
    await query.answer(f"Booked {slot}")
    assert query.message is not None
    await query.message.edit_text(f"Booked for {slot}")  # type: ignore[union-attr]


async def signup(message: Message, state: FSMContext) -> None:
    await state.set_state(Signup.name)
    await message.answer("What is your name?")


async def signup_name(message: Message, state: FSMContext) -> None:
    await state.clear()
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Share phone", request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
    await message.answer(
        f"Nice to meet you, {message.text}! Share your phone?", reply_markup=keyboard
    )


async def contact(message: Message) -> None:
    assert message.contact is not None
    await message.answer(f"Got {message.contact.phone_number}", reply_markup=ReplyKeyboardRemove())


async def echo(message: Message) -> None:
    await message.answer(f"echo: {message.text}")


def build_dispatcher() -> Dispatcher:
    """A fresh dispatcher with the demo routers (routers attach to one dispatcher only)."""
    menu = Router(name="menu")
    menu.message.register(start, CommandStart())
    menu.message.register(broken_html, Command("broken"))
    menu.message.register(document, Command("doc"))
    menu.message.register(echo, F.text)
    booking = Router(name="booking")
    booking.callback_query.register(book, F.data.startswith("book:"))
    profile = Router(name="profile")
    profile.message.register(signup, Command("signup"))
    profile.message.register(signup_name, StateFilter(Signup.name), F.text)
    profile.message.register(contact, F.contact)
    dp = Dispatcher(storage=MemoryStorage())
    dp.include_routers(profile, booking, menu)
    return dp
