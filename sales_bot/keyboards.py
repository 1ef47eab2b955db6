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
    ChangePlanCb,
    HistoryCb,
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
        kb.button(
            text=texts(locale, "button_change_plan"),
            callback_data=BotCb(action=BotAction.PLANS, tenant_id=tid),
        )
        kb.button(
            text=texts(locale, "button_receipt_contact"),
            callback_data=BotCb(action=BotAction.RECEIPT, tenant_id=tid),
        )
    kb.button(text=texts(locale, "button_payments"), callback_data=HistoryCb(tenant_id=tid))
    kb.button(text=texts(locale, "button_back"), callback_data=MenuCb(action=MenuAction.BOTS))
    kb.adjust(1)
    return kb.as_markup()


# -- issue 18: plan changes, payment history, auto-renewal consent ------------------------------


def autopay_offer(
    texts: Texts, locale: str, *, amount: str, period_days: int
) -> InlineKeyboardMarkup:
    """Consent to automatic charges in words, or paying by hand."""
    kb = InlineKeyboardBuilder()
    kb.button(
        text=texts(locale, "button_autopay_agree", amount=amount, period_days=period_days),
        callback_data=SaveCardCb(save=True),
    )
    kb.button(text=texts(locale, "button_save_card_no"), callback_data=SaveCardCb(save=False))
    kb.adjust(1)
    return kb.as_markup()


def autopay_confirm(
    texts: Texts, locale: str, *, tenant_id: int, amount: str, period_days: int
) -> InlineKeyboardMarkup:
    """Turning auto-renewal back on: agree to the terms, or go back."""
    kb = InlineKeyboardBuilder()
    kb.button(
        text=texts(locale, "button_autopay_agree", amount=amount, period_days=period_days),
        callback_data=BotCb(action=BotAction.AUTO_AGREE, tenant_id=tenant_id),
    )
    kb.button(
        text=texts(locale, "button_back"),
        callback_data=BotCb(action=BotAction.SHOW, tenant_id=tenant_id),
    )
    kb.adjust(1)
    return kb.as_markup()


def plan_choices(
    texts: Texts, locale: str, *, tenant_id: int, items: Sequence[Any], current: str | None
) -> InlineKeyboardMarkup:
    """The plans on sale to change to (the current one marked)."""
    kb = InlineKeyboardBuilder()
    for plan in items:
        kb.button(
            text=texts(
                locale,
                "plan_change_button",
                name=plan_text(plan, locale)[0],
                price=money(plan["price"], plan["currency"]),
                period_days=plan["period_days"],
                current=plan["code"] == current,
            ),
            callback_data=ChangePlanCb(tenant_id=tenant_id, code=plan["code"]),
        )
    kb.button(
        text=texts(locale, "button_back"),
        callback_data=BotCb(action=BotAction.SHOW, tenant_id=tenant_id),
    )
    kb.adjust(1)
    return kb.as_markup()


def confirm_plan_change(
    texts: Texts, locale: str, *, tenant_id: int, code: str, label: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=label, callback_data=ChangePlanCb(tenant_id=tenant_id, code=code, go=True))
    kb.button(
        text=texts(locale, "button_back"),
        callback_data=BotCb(action=BotAction.PLANS, tenant_id=tenant_id),
    )
    kb.adjust(1)
    return kb.as_markup()


def history_pages(
    texts: Texts, locale: str, *, tenant_id: int, page: int, has_older: bool
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if page > 0:
        kb.button(
            text=texts(locale, "button_newer"),
            callback_data=HistoryCb(tenant_id=tenant_id, page=page - 1),
        )
    if has_older:
        kb.button(
            text=texts(locale, "button_older"),
            callback_data=HistoryCb(tenant_id=tenant_id, page=page + 1),
        )
    kb.button(
        text=texts(locale, "button_back"),
        callback_data=BotCb(action=BotAction.SHOW, tenant_id=tenant_id),
    )
    kb.adjust(2, 1)
    return kb.as_markup()


def event_buttons(
    texts: Texts, locale: str, *, kind: str, tenant_id: int, payload: dict[str, Any]
) -> InlineKeyboardMarkup | None:
    """What an owner can do about an event in one tap (pay by hand, turn auto-renewal off)."""
    kb = InlineKeyboardBuilder()
    if kind == "subscription.renewal_failed":
        kb.button(
            text=texts(locale, "button_pay_by_hand"),
            callback_data=BotCb(action=BotAction.RENEW, tenant_id=tenant_id),
        )
    elif kind == "subscription.reminder" and payload.get("auto_renew"):
        kb.button(
            text=texts(locale, "button_autorenew_off"),
            callback_data=BotCb(action=BotAction.AUTO_OFF, tenant_id=tenant_id),
        )
    elif kind in ("subscription.reminder", "subscription.expired"):
        kb.button(
            text=texts(locale, "button_renew"),
            callback_data=BotCb(action=BotAction.RENEW, tenant_id=tenant_id),
        )
    else:
        return None
    return kb.as_markup()
