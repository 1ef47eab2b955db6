"""Public holidays in the slot engine's inputs: closed days, opened ones, worked weekend days."""

from __future__ import annotations

from datetime import date

from tenant_bot.booking import WorkInterval
from tenant_bot.booking.availability import assemble
from tenant_bot.booking.holidays import HolidayCalendars

NINE_TO_SIX = (9 * 60, 18 * 60)


async def test_russian_calendar_moves_days_off_and_working_saturdays() -> None:
    days = await HolidayCalendars().days("RU", [2024])
    assert days.closed[date(2024, 1, 1)] and date(2024, 4, 29) in days.closed
    # Saturday 27 April 2024 was worked instead of Monday 29 April, Saturday 2 November instead of
    # Tuesday 30 April, Saturday 28 December instead of Monday 30 December
    assert days.workdays == {date(2024, 4, 27): 0, date(2024, 11, 2): 1, date(2024, 12, 28): 0}
    assert date(2024, 5, 1) not in days.without([date(2024, 5, 1)]).closed


async def test_assemble_applies_holidays_below_per_date_hours() -> None:
    days = await HolidayCalendars().days("RU", [2024])
    weekdays_only = [(1, wd, *NINE_TO_SIX) for wd in range(5)]
    saturdays_too = [(2, wd, *NINE_TO_SIX) for wd in range(6)]
    staff, business = assemble(
        [1, 2],
        hours=[*weekdays_only, *saturdays_too],
        # the business works 1 May anyway; staff 2 has their own hours on 29 April
        exceptions=[(None, date(2024, 5, 1), 10 * 60, 14 * 60), (2, date(2024, 4, 29), 600, 660)],
        blocks=[],
        holidays=days,
    )
    assert business[date(2024, 1, 1)] == [] and business[date(2024, 4, 29)] == []
    assert business[date(2024, 5, 1)] == [WorkInterval(600, 840)]
    first, second = staff
    # a worked Saturday takes the hours of the day off it stands for (Monday's) ...
    assert first.exceptions[date(2024, 4, 27)] == [WorkInterval(*NINE_TO_SIX)]
    # ... unless they work Saturdays anyway
    assert date(2024, 4, 27) not in second.exceptions
    assert second.exceptions[date(2024, 4, 29)] == [WorkInterval(600, 660)]
