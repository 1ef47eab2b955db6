"""Dates and amounts as owners read them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
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


def amount(value: Decimal | str) -> str:
    """``990.00``: two decimals, exact."""
    return str(Decimal(value).quantize(Decimal("0.01")))
