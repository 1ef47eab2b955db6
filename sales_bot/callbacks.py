"""Inline-button payloads as aiogram ``CallbackData`` factories with short prefixes (64-byte limit)."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class MenuAction(StrEnum):
    BUY = "buy"
    BOTS = "bots"
    CANCEL = "cancel"
    LANGUAGE = "lang"


class BotAction(StrEnum):
    SHOW = "show"
    RENEW = "renew"
    AUTO_ON = "on"
    AUTO_OFF = "off"
    TOKEN = "token"  # noqa: S105  (the "change token" action, not a secret)
    AUTO_AGREE = "agree"  # consent to automatic charges given: turn auto-renewal on
    PLANS = "plans"  # the plans to change to
    RECEIPT = "rcpt"  # change the receipt contact


class MenuCb(CallbackData, prefix="m"):
    """The main menu's buttons."""

    action: MenuAction


class PlanCb(CallbackData, prefix="pl"):
    """A plan chosen for purchase."""

    code: str


class TimezoneCb(CallbackData, prefix="tz"):
    """A time zone offered as a button."""

    name: str


class LanguageCb(CallbackData, prefix="lg"):
    """The tenant bot's language."""

    locale: str


class MyLanguageCb(CallbackData, prefix="ml"):
    """The language the owner speaks with the sales bot (and hears about their bots in)."""

    locale: str


class SaveCardCb(CallbackData, prefix="sc"):
    """Whether to save the card for auto-renewal."""

    save: bool


class BotCb(CallbackData, prefix="b"):
    """An action on one of the owner's bots."""

    action: BotAction
    tenant_id: int


class ChangePlanCb(CallbackData, prefix="cp"):
    """A plan to change one of the owner's bots to: first the quote, then ``go`` to confirm it."""

    tenant_id: int
    code: str
    go: bool = False


class HistoryCb(CallbackData, prefix="ph"):
    """A page (from 0, newest first) of a bot's payments."""

    tenant_id: int
    page: int = 0
