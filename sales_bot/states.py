"""FSM states of the sales bot's conversations."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class Purchase(StatesGroup):
    """Buying a bot: plan -> name -> token -> time zone -> language -> card -> (email) -> pay."""

    name = State()
    token = State()
    timezone = State()
    language = State()
    save_card = State()
    email = State()


class ChangeToken(StatesGroup):
    """Replacing the token of one of the owner's bots."""

    token = State()


class ChangeReceiptContact(StatesGroup):
    """Replacing where one of the owner's bots' receipts go (e-mail or phone)."""

    contact = State()
