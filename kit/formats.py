"""Money and time zones as people read them, the same in the sales bot and every tenant bot.

- :func:`money`: ``990 ₽``, ``1 500 ₽`` (a narrow no-break space, U+202F, between thousands, so a
  price never breaks across lines), ``12.50 $``: whole amounts without decimals.
- :func:`zone_label`: ``Москва (UTC+3)`` / ``Moscow (UTC+3)`` instead of ``Europe/Moscow``; zones
  without a name here show their IANA city (``Berlin (UTC+1)``). The offset is the one in force
  at the moment given (summer time included).
- :func:`find_zone`: what a person typed (``москва``, ``Moscow``, ``Europe/Moscow``) as an IANA name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

THOUSANDS = "\u202f"  # narrow no-break space
SYMBOLS: dict[str, str] = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br"}

# The zones a Russian-speaking business most likely works in, named as people say them.
ZONE_NAMES: dict[str, dict[str, str]] = {
    "Europe/Kaliningrad": {"ru": "Калининград", "en": "Kaliningrad"},
    "Europe/Moscow": {"ru": "Москва", "en": "Moscow"},
    "Europe/Samara": {"ru": "Самара", "en": "Samara"},
    "Asia/Yekaterinburg": {"ru": "Екатеринбург", "en": "Yekaterinburg"},
    "Asia/Omsk": {"ru": "Омск", "en": "Omsk"},
    "Asia/Novosibirsk": {"ru": "Новосибирск", "en": "Novosibirsk"},
    "Asia/Krasnoyarsk": {"ru": "Красноярск", "en": "Krasnoyarsk"},
    "Asia/Irkutsk": {"ru": "Иркутск", "en": "Irkutsk"},
    "Asia/Yakutsk": {"ru": "Якутск", "en": "Yakutsk"},
    "Asia/Vladivostok": {"ru": "Владивосток", "en": "Vladivostok"},
    "Asia/Magadan": {"ru": "Магадан", "en": "Magadan"},
    "Asia/Kamchatka": {"ru": "Камчатка", "en": "Kamchatka"},
    "Europe/Volgograd": {"ru": "Волгоград", "en": "Volgograd"},
    "Europe/Minsk": {"ru": "Минск", "en": "Minsk"},
    "Europe/Kyiv": {"ru": "Киев", "en": "Kyiv"},
    "Asia/Almaty": {"ru": "Алматы", "en": "Almaty"},
    "Asia/Tashkent": {"ru": "Ташкент", "en": "Tashkent"},
    "Asia/Tbilisi": {"ru": "Тбилиси", "en": "Tbilisi"},
    "Asia/Yerevan": {"ru": "Ереван", "en": "Yerevan"},
    "Asia/Baku": {"ru": "Баку", "en": "Baku"},
    "Europe/Istanbul": {"ru": "Стамбул", "en": "Istanbul"},
    "Asia/Dubai": {"ru": "Дубай", "en": "Dubai"},
    "Europe/Berlin": {"ru": "Берлин", "en": "Berlin"},
    "Europe/London": {"ru": "Лондон", "en": "London"},
}


def money(amount: Decimal | int | str, currency: str = "RUB") -> str:
    """``990 ₽``, ``1 500 ₽``, ``12.50 $``: the symbol after the amount, thousands apart."""
    value = Decimal(amount)
    text = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    code = currency.strip()
    return f"{text.replace(',', THOUSANDS)} {SYMBOLS.get(code, code)}"


def utc_offset(zone: str, at: datetime | None = None) -> str:
    """``UTC+3``, ``UTC-4``, ``UTC+5:30``, ``UTC`` for the zone at ``at`` (now by default)."""
    offset = (at or datetime.now(UTC)).astimezone(ZoneInfo(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(zone: str, locale: str, at: datetime | None = None) -> str:
    """``Москва (UTC+3)`` / ``Moscow (UTC+3)``; an unknown name is shown as it is."""
    try:
        offset = utc_offset(zone, at)
    except (ZoneInfoNotFoundError, ValueError):
        return zone
    if zone in ("UTC", "Etc/UTC"):
        return "UTC"
    names = ZONE_NAMES.get(zone)
    city = names.get(locale, names["en"]) if names else zone.rsplit("/", 1)[-1].replace("_", " ")
    return f"{city} ({offset})"


@cache
def _canonical_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def find_zone(typed: str) -> str | None:
    """The IANA zone for a city named here (any locale, any case) or a canonical IANA name."""
    text = " ".join(typed.split())
    wanted = text.casefold()
    for zone, names in ZONE_NAMES.items():
        if wanted in (name.casefold() for name in names.values()):
            return zone
    if text == "UTC" or text in _canonical_zones():
        return text
    return None
