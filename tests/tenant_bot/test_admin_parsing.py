"""The owner's typed dates, periods and ranges (pure parsing, no bot needed)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from tenant_bot.handlers.admin.common import parse_day, parse_day_range, parse_period

TODAY = date(2030, 1, 7)
ZONE = ZoneInfo("Europe/Moscow")


def test_a_day_without_a_year_is_the_nearest_ahead_or_behind() -> None:
    assert parse_day("06.01", today=TODAY) == date(2031, 1, 6)
    assert parse_day("06.01", today=TODAY, future=False) == date(2030, 1, 6)
    assert parse_day("08.01", today=TODAY, future=False) == date(2029, 1, 8)
    assert parse_day("2030-03-07", today=TODAY) == date(2030, 3, 7)


def test_a_day_range_is_two_days_in_order_within_the_limit() -> None:
    assert parse_day_range("01.12 31.12", today=TODAY, max_days=366) == (
        date(2029, 12, 1),
        date(2029, 12, 31),
    )
    assert parse_day_range(" 2029-01-01   2029-12-31 ", today=TODAY, max_days=366) == (
        date(2029, 1, 1),
        date(2029, 12, 31),
    )


@pytest.mark.parametrize(
    "text",
    ["", "01.12", "01.12 02.12 03.12", "31.12 01.12", "2028-01-01 2029-12-31", "31.02 01.03"],
)
def test_a_bad_day_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_day_range(text, today=TODAY, max_days=366)


def test_a_period_runs_to_midnight_and_keeps_its_reason() -> None:
    start, end, reason = parse_period("08.01 14:00-24:00 dentist visit", today=TODAY, zone=ZONE)
    assert start == datetime.combine(date(2030, 1, 8), time(14), ZONE)
    assert end == datetime.combine(date(2030, 1, 9), time(0), ZONE)
    assert reason == "dentist visit"


@pytest.mark.parametrize(
    "text", ["08.01", "08.01 16:00-14:00", "08.01 25:00-26:00", "x 10:00-11:00"]
)
def test_a_bad_period_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text, today=TODAY, zone=ZONE)
