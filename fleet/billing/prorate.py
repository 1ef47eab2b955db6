"""The arithmetic of plan changes: what unused paid time is worth, and how much time a sum buys.

Money is kept in :class:`~decimal.Decimal`; a credit is rounded down to the kopeck (never promised
more than was paid).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import asyncpg

# YooKassa takes no payment below one rouble: a smaller difference is not charged.
MIN_CHARGE = Decimal("1.00")
KOPECK = Decimal("0.01")


def daily_price(plan: asyncpg.Record) -> Decimal:
    """A plan's price per day (how plans of different periods are compared)."""
    return Decimal(plan["price"]) / Decimal(plan["period_days"])


def _value(plan: asyncpg.Record, span: timedelta) -> Decimal:
    if span <= timedelta(0):
        return Decimal(0)
    return daily_price(plan) * Decimal(span.total_seconds()) / Decimal(86400)


def unused_credit(
    subscription: asyncpg.Record | None,
    *,
    current: asyncpg.Record | None,
    scheduled: asyncpg.Record | None,
    now: datetime,
) -> Decimal:
    """The unused paid time of a subscription at ``now``, in money (kopecks, rounded down): the time
    left on the current plan until a scheduled change, then on the scheduled plan until the end."""
    if (
        subscription is None
        or current is None
        or subscription["status"] not in ("active", "grace")
        or subscription["current_period_end"] <= now
    ):
        return Decimal("0.00")
    end = subscription["current_period_end"]
    switch = subscription["scheduled_plan_at"] if scheduled is not None else None
    switch = min(max(switch, now), end) if switch is not None else end
    total = _value(current, switch - now)
    if scheduled is not None:
        total += _value(scheduled, end - switch)
    return total.quantize(KOPECK, rounding=ROUND_DOWN)


def converted_period_end(plan: asyncpg.Record, *, now: datetime, value: Decimal) -> datetime:
    """When ``value`` worth of ``plan`` runs out, starting ``now`` (a free plan: one period)."""
    price = Decimal(plan["price"])
    if price <= 0:
        return now + timedelta(days=plan["period_days"])
    seconds = Decimal(plan["period_days"]) * Decimal(86400) * value / price
    return now + timedelta(seconds=int(seconds))
