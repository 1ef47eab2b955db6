"""Public holidays of one country for some years, as JSON on stdout:
``python -P tenant_bot/booking/holiday_child.py RU 2030 2031`` (exit 3: no calendar for that country;
``-P``: this folder's ``holidays.py`` must not shadow the library).

Run as a script (by path, not ``-m``: nothing of botfleet is imported, so it starts in a fraction of
a second) by :mod:`.holidays` in a child process, so the bot never holds the ``holidays`` library.
Output: ``{"closed": {"2030-01-01": "New Year Holidays", ...}, "workdays": {"2024-04-27": 0}}``,
a worked weekend day mapped to the weekday (0 = Monday) of the day off it stands in for.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date

UNKNOWN_COUNTRY_EXIT = 3
_DATE = re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})")


def _substituted(name: str, candidates: set[date]) -> date | None:
    """The worked day a "Day off (substituted from ...)" name mentions, if one of ``candidates``
    (the date format is the library's and may read either way round)."""
    for match in _DATE.finditer(name):
        a, b, year = (int(g) for g in match.groups())
        for month, day in ((a, b), (b, a)):
            try:
                found = date(year, month, day)
            except ValueError:
                continue
            if found in candidates:
                return found
    return None


def compute(country: str, years: list[int]) -> dict[str, dict[str, object]] | None:
    """The calendar as JSON-ready dicts, or None when the library has no such country."""
    import holidays

    try:
        calendar = holidays.country_holidays(country, years=years)
    except NotImplementedError:
        return None
    closed = {day: str(name) for day, name in calendar.items()}
    weekend_workdays = set(getattr(calendar, "weekend_workdays", ()))
    workdays = dict.fromkeys(weekend_workdays, 0)
    for day, name in closed.items():
        worked = _substituted(name, weekend_workdays)
        if worked is not None:
            workdays[worked] = day.weekday()
    return {
        "closed": {d.isoformat(): n for d, n in closed.items()},
        "workdays": {d.isoformat(): w for d, w in workdays.items() if d.year in years},
    }


def main(argv: list[str]) -> int:
    found = compute(argv[0], [int(year) for year in argv[1:]])
    if found is None:
        return UNKNOWN_COUNTRY_EXIT
    json.dump(found, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
