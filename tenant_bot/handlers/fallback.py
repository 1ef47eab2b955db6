"""What nothing else handled: outdated or forged buttons, and messages the bot did not expect.

Included last, so it only sees updates every feature router passed on.
"""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from kit.routing import Routes
from tenant_bot.handlers.common import stale
from tenant_bot.keyboards import ask_phone, main_menu
from tenant_bot.states import BookingFlow, DeskInput, OwnerInput
from tenant_bot.texts import BotTexts

routes = Routes("fallback")

# What to say when a conversation waits for typed text and gets something else (a sticker, a photo).
_EXPECTED = {
    BookingFlow.name.state: "ask_name",
    BookingFlow.phone.state: "ask_phone",
}


@routes.callback_query()
async def outdated_button(
    callback: CallbackQuery, texts: BotTexts, locale: str, is_owner: bool
) -> None:
    """A button of an old screen, an earlier step of a flow, or data we never produced."""
    await stale(callback, texts, locale, is_owner=is_owner)


@routes.message()
async def unexpected_message(
    message: Message, state: FSMContext, texts: BotTexts, locale: str, is_owner: bool
) -> None:
    """Re-ask the pending question, or point at the menu."""
    current = await state.get_state()
    if current in _EXPECTED:
        key = _EXPECTED[current]
        markup = ask_phone(texts, locale) if current == BookingFlow.phone.state else None
        await message.answer(
            texts(locale, "expected_text") + "\n" + texts(locale, key), reply_markup=markup
        )
        return
    if current is not None and current.startswith((OwnerInput.__name__, DeskInput.__name__)):
        await message.answer(texts(locale, "expected_text"))
        return
    if current is not None:
        await message.answer(texts(locale, "use_buttons"))
        return
    await message.answer(
        texts(locale, "not_understood"), reply_markup=main_menu(texts, locale, is_owner=is_owner)
    )
