"""Inline keyboards of the sales bot (labels from the templates, payloads from callbacks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from fleet.billing.accounts import OwnerBot
from kit.formats import money, zone_label
from sales_bot.callbacks import (
    BotAction,
    BotCb,
    LanguageCb,
    MenuAction,
    MenuCb,
    MyLanguageCb,
    PlanCb,
    SaveCardCb,
    TimezoneCb,
)
from schemas.plans import plan_text
from templates import Texts

# Offered as buttons, labelled as people know them ("Москва (UTC+3)"); a city of
# ``kit.formats.ZONE_NAMES`` or any IANA name can be typed.
TIMEZONES: tuple[str, ...] = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Vladivostok",
    "Europe/Minsk",
    "Asia/Almaty",
    "UTC",
)
LANGUAGES: dict[str, str] = {"ru": "Русский", "en": "English"}


# aiogram types ``adjust()`` as returning the base builder, whose ``as_markup()`` may be a reply
# keyboard: the markup is taken from ``kb`` itself (``adjust`` returns it).
def main_menu(texts: Texts, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=texts(locale, "button_buy"), callback_data=MenuCb(action=MenuAction.BUY))
    kb.button(text=texts(locale, "button_my_bots"), callback_data=MenuCb(action=MenuAction.BOTS))
    kb.button(
        text=texts(locale, "button_language"), callback_data=MenuCb(action=MenuAction.LANGUAGE)
    )
    kb.adjust(1)
    return kb.as_markup()


def cancel(texts: Texts, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=texts(locale, "button_cancel"), callback_data=MenuCb(action=MenuAction.CANCEL))
    return kb.as_markup()


def plans(texts: Texts, locale: str, items: Sequence[Any]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for plan in items:
        kb.button(
            text=texts(
                locale,
                "plan_button",
                name=plan_text(plan, locale)[0],
                price=money(plan["price"], plan["currency"]),
            ),
            callback_data=PlanCb(code=plan["code"]),
        )
    kb.button(text=texts(locale, "button_cancel"), callback_data=MenuCb(action=MenuAction.CANCEL))
    kb.adjust(1)
    return kb.as_markup()


def timezones(texts: Texts, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for name in TIMEZONES:
        kb.button(text=zone_label(name, locale), callback_data=TimezoneCb(name=name))
    kb.adjust(2)
    kb.row()
    kb.button(text=texts(locale, "button_cancel"), callback_data=MenuCb(action=MenuAction.CANCEL))
    kb.adjust(2, repeat=True)
    return kb.as_markup()


def languages() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, label in LANGUAGES.items():
        kb.button(text=label, callback_data=LanguageCb(locale=code))
    kb.adjust(2)
    return kb.as_markup()


def my_language() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, label in LANGUAGES.items():
        kb.button(text=label, callback_data=MyLanguageCb(locale=code))
    kb.adjust(2)
    return kb.as_markup()


def save_card(texts: Texts, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=texts(locale, "button_save_card_yes"), callback_data=SaveCardCb(save=True))
    kb.button(text=texts(locale, "button_save_card_no"), callback_data=SaveCardCb(save=False))
    kb.adjust(1)
    return kb.as_markup()


def pay(url: str, label: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=label, url=url)
    return kb.as_markup()


def bot_list(texts: Texts, locale: str, bots: Sequence[OwnerBot]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for bot in bots:
        kb.button(
            text=texts(
                locale, "bot_button", bot_username=bot.bot_username or bot.slug, status=bot.status
            ),
            callback_data=BotCb(action=BotAction.SHOW, tenant_id=bot.tenant_id),
        )
    kb.adjust(1)
    return kb.as_markup()


def bot_card(texts: Texts, locale: str, bot: OwnerBot) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    tid = bot.tenant_id
    if bot.desired_state != "deleted":
        label = "button_pay_now" if bot.status == "new" else "button_renew"
        kb.button(
            text=texts(locale, label), callback_data=BotCb(action=BotAction.RENEW, tenant_id=tid)
        )
    if bot.subscription_status is not None:
        if bot.auto_renew:
            kb.button(
                text=texts(locale, "button_autorenew_off"),
                callback_data=BotCb(action=BotAction.AUTO_OFF, tenant_id=tid),
            )
        else:
            kb.button(
                text=texts(locale, "button_autorenew_on"),
                callback_data=BotCb(action=BotAction.AUTO_ON, tenant_id=tid),
            )
    if bot.desired_state != "deleted":
        kb.button(
            text=texts(locale, "button_change_token"),
            callback_data=BotCb(action=BotAction.TOKEN, tenant_id=tid),
        )
    kb.button(text=texts(locale, "button_back"), callback_data=MenuCb(action=MenuAction.BOTS))
    kb.adjust(1)
    return kb.as_markup()
