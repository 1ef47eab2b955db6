"""The bot's words: jinja2 macros in ``templates/tenant_bot/<locale>.j2`` plus locale-aware formats.

Every user-facing string comes from the templates (autoescaped, so names typed by owners and customers
cannot inject HTML); this module only picks the locale and formats dates, times and money with the
names the templates define (weekday and month names are texts too).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from kit import formats
from templates import LOCALES, Texts

AREA = "tenant_bot"


def pick_locale(language_code: str | None, default: str) -> str:
    """The supported locale for a Telegram ``language_code`` (``ru-RU`` -> ``ru``), else ``default``."""
    if language_code:
        short = language_code.split("-", 1)[0].lower()
        if short in LOCALES:
            return short
    return default


class BotTexts:
    """Renders messages and formats values for one locale at a time."""

    def __init__(self, *, default_locale: str = "ru") -> None:
        self.default_locale = default_locale if default_locale in LOCALES else "ru"
        self._texts = Texts(AREA, default_locale=self.default_locale)

    @property
    def locales(self) -> tuple[str, ...]:
        return LOCALES

    def __call__(self, locale: str, key: str, /, **values: Any) -> str:
        return self._texts(locale, key, **values)

    def has(self, locale: str, key: str) -> bool:
        return self._texts.has(locale, key)

    def missing(self) -> dict[str, set[str]]:
        """Messages some locale lacks (a test keeps this empty)."""
        return self._texts.missing()

    @cache  # noqa: B019 - one instance per process; the cache is the point
    def _names(self, locale: str, key: str) -> tuple[str, ...]:
        return tuple(self(locale, key).split())

    def weekday(self, locale: str, day: date) -> str:
        """Short weekday name (``Mon`` / ``Пн``)."""
        return self._names(locale, "weekdays_short")[day.weekday()]

    def weekday_names(self, locale: str) -> tuple[str, ...]:
        return self._names(locale, "weekdays_short")

    def month(self, locale: str, month: int) -> str:
        """Month name in the nominative (``March`` / ``Март``), for calendar headers."""
        return self._names(locale, "months")[month - 1]

    def day(self, locale: str, day: date) -> str:
        """``Fri 7 Mar`` / ``Пт 7 мар``."""
        short = self._names(locale, "months_short")[day.month - 1]
        return f"{self.weekday(locale, day)} {day.day} {short}"

    def when(self, locale: str, moment: datetime, zone: ZoneInfo) -> str:
        """A booking's start in the tenant's time zone: ``Fri 7 Mar, 14:30``."""
        local = moment.astimezone(zone)
        return f"{self.day(locale, local.date())}, {local:%H:%M}"

    @staticmethod
    def money(amount: Decimal, currency: str) -> str:
        """``1 500 ₽`` / ``12.50 $``: the one money format of both bots (:func:`kit.formats.money`)."""
        return formats.money(amount, currency)

    @staticmethod
    def zone(locale: str, zone: str) -> str:
        """``Москва (UTC+3)`` / ``Moscow (UTC+3)`` (:func:`kit.formats.zone_label`)."""
        return formats.zone_label(zone, locale)

    def duration(self, locale: str, minutes: int) -> str:
        """``1 h 30 min`` / ``1 ч 30 мин``."""
        hours, rest = divmod(minutes, 60)
        return self(locale, "duration", hours=hours, minutes=rest)
