"""Dates as owners read them (money and time zones: :mod:`kit.formats`, shared with tenant bots)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def day(moment: datetime | str | None, timezone: str | None = None) -> str | None:
    """``31.12.2026`` in the business's time zone (UTC when unknown)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%d.%m.%Y")
