"""Working hours as owners type them, and the sets of weekdays one day's hours are copied to.

``parse_day_hours("9-13, 14-18")`` reads a day the way people write it (``9-18``, ``9:00-18:00``,
``9:00–18:00`` with a dash, ``09.00 - 18.00``, several intervals separated by commas, semicolons or
spaces; ``-`` or a word like "off" for a day off) and refuses nonsense with an
:class:`~tenant_bot.booking.errors.InvalidHours` that says what is wrong (its ``problem``) and where
(its ``text``), so the bot can answer with the expected form.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from tenant_bot.booking.errors import InvalidHours
from tenant_bot.booking.models import WorkInterval

WORKWEEK: tuple[int, ...] = (0, 1, 2, 3, 4)
"""Monday to Friday (0 = Monday)."""

WEEK: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
"""Every day of the week."""

DAY_OFF = frozenset({"-", "–", "—", "off", "day off", "closed", "выходной", "нет"})
"""What typed alone means a day off (compared case-insensitively)."""

_SEPARATORS = re.compile(r"[,;\n]+")


def parse_day_hours(text: str) -> list[WorkInterval]:
    """One day's intervals, in order; an empty list is a day off.

    Raises :class:`InvalidHours`: ``format`` (nothing like 9:00-18:00), ``time`` (a time that does
    not exist), ``order`` (the end is not after the start) or ``overlap``."""
    if text.strip().lower() in DAY_OFF:
        return []
    intervals = []
    for part in _SEPARATORS.split(text):
        if not part.strip():
            continue
        intervals.extend(_intervals_of(part))
    if not intervals:
        raise InvalidHours("format", text.strip())
    return ordered_intervals(intervals)


def _intervals_of(part: str) -> list[WorkInterval]:
    """``09.00 - 18.00`` is one interval; ``9-13 14-18`` (no comma) is two."""
    try:
        return [WorkInterval.parse(part)]
    except InvalidHours as whole:
        words = part.split()
        if len(words) < 2:
            raise
        try:
            return [WorkInterval.parse(word) for word in words]
        except InvalidHours as piece:
            raise (piece if piece.problem != "format" else whole) from None


def ordered_intervals(intervals: Sequence[WorkInterval]) -> list[WorkInterval]:
    """The intervals sorted; raises :class:`InvalidHours` (``overlap``) if two overlap."""
    ordered = sorted(intervals)
    for earlier, later in itertools.pairwise(ordered):
        if later.start_minute < earlier.end_minute:
            raise InvalidHours("overlap", f"{earlier}, {later}")
    return ordered
