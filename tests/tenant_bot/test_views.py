"""Pure screen helpers shared by several routers."""

from __future__ import annotations

from datetime import date

from tenant_bot.views import MonthPage, month_page


def test_month_page_clamps_the_offset_to_the_months_in_range() -> None:
    today, last = date(2030, 11, 20), date(2031, 2, 3)
    assert month_page(today, last, 0) == MonthPage(2030, 11, 0, 3)
    assert month_page(today, last, 2) == MonthPage(2031, 1, 2, 3)
    assert month_page(today, last, 9) == MonthPage(2031, 2, 3, 3)  # a stale "next" button
    assert month_page(today, last, -1) == MonthPage(2030, 11, 0, 3)
    assert month_page(today, today, 5) == MonthPage(2030, 11, 0, 0)
