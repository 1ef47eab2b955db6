"""Money and time zones as people read them, one way for both bots (issue 16, item 7)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kit.formats import find_zone, money, zone_label

WINTER = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
SUMMER = datetime(2030, 7, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("990.00"), "RUB", "990 ₽"),
        ("1500.00", "RUB", "1\u202f500 ₽"),
        (1_234_567, "RUB", "1\u202f234\u202f567 ₽"),
        (Decimal("12.50"), "USD", "12.50 $"),
        (Decimal("0"), "RUB", "0 ₽"),
        (Decimal("99.9"), "XYZ", "99.90 XYZ"),
        ("990.00", "RUB ", "990 ₽"),  # char(3) columns come padded
    ],
)
def test_money(amount: object, currency: str, shown: str) -> None:
    assert money(amount, currency) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("zone", "locale", "at", "shown"),
    [
        ("Europe/Moscow", "ru", WINTER, "Москва (UTC+3)"),
        ("Europe/Moscow", "en", SUMMER, "Moscow (UTC+3)"),
        ("Asia/Yekaterinburg", "ru", WINTER, "Екатеринбург (UTC+5)"),
        ("Europe/Berlin", "en", WINTER, "Berlin (UTC+1)"),
        ("Europe/Berlin", "en", SUMMER, "Berlin (UTC+2)"),
        ("America/New_York", "ru", WINTER, "New York (UTC-5)"),
        ("Asia/Kolkata", "en", WINTER, "Kolkata (UTC+5:30)"),
        ("UTC", "ru", WINTER, "UTC"),
        ("Not/AZone", "ru", WINTER, "Not/AZone"),
    ],
)
def test_zone_label(zone: str, locale: str, at: datetime, shown: str) -> None:
    assert zone_label(zone, locale, at) == shown


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Москва", "Europe/Moscow"),
        ("  екатеринбург ", "Asia/Yekaterinburg"),
        ("moscow", "Europe/Moscow"),
        ("Europe/Berlin", "Europe/Berlin"),
        ("UTC", "UTC"),
        ("Atlantis", None),
        ("", None),
    ],
)
def test_find_zone(typed: str, zone: str | None) -> None:
    assert find_zone(typed) == zone
