"""The owner's statistics: numbers computed in the database match counts made here from the same
bookings; the owner gets them through the emulator as a chart image and text."""

from __future__ import annotations

import io
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from PIL import Image

from tenant_bot.charts import bar_chart
from tests.support.chat_helpers import say, tap, wait_for_text

MOSCOW = ZoneInfo("Europe/Moscow")
STATUSES = ("pending", "confirmed", "done", "no_show", "cancelled")


async def seed(tenant: Any, count: int = 400) -> list[dict[str, Any]]:
    """Bookings every 5 hours from 1 December 2029 (so some before January), random customers,
    services, staff, prices and outcomes; returns them as inserted."""
    rng = random.Random(20)
    core = tenant.core
    beard = await core.catalogue.create_service(name="Beard", duration_minutes=30, price=700)
    olga = await core.catalogue.create_staff(name="Olga", service_ids=[beard.id])
    services = {tenant.service_id: "Haircut", beard.id: "Beard"}
    staff = {tenant.staff_id: "Ivan", olga.id: "Olga"}
    rows = []
    conn = await asyncpg.connect(tenant.database_url)
    try:
        customers = [
            await conn.fetchval(
                "INSERT INTO customers (telegram_user_id, name) VALUES ($1, $2) RETURNING id",
                9_000_000 + n,
                f"c{n}",
            )
            for n in range(40)
        ]
        start = datetime(2029, 12, 1, 7, 0, tzinfo=UTC)
        for i in range(count):
            starts = start + timedelta(hours=5 * i)
            row = {
                "customer_id": rng.choice(customers),
                "service_id": rng.choice(list(services)),
                "staff_id": rng.choice(list(staff)),
                "starts_at": starts,
                "status": rng.choice(STATUSES),
                "price": Decimal(rng.choice([500, 700, 1500, 2000])),
                "paid": rng.choice([None, None, Decimal(500)]),
                "refund": rng.choice([None, Decimal(200)]),
            }
            await conn.execute(
                """
                INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, ends_at,
                                      occupied, status, price, created_at, updated_at,
                                      paid_amount, refund_due)
                VALUES ($1, $2, $3, $4::timestamptz, $4 + interval '1 hour',
                        tstzrange($4::timestamptz, $4::timestamptz + interval '1 hour'), $5, $6, $4, $4,
                        $7, $8)
                """,
                row["customer_id"],
                row["service_id"],
                row["staff_id"],
                starts,
                row["status"],
                row["price"],
                row["paid"],
                row["refund"] if row["paid"] else None,
            )
            rows.append(
                row | {"service": services[row["service_id"]], "staff": staff[row["staff_id"]]}
            )
    finally:
        await conn.close()
    return rows


def expected(rows: list[dict[str, Any]], day_from: date, day_to: date) -> dict[str, Any]:
    def local_day(r: dict[str, Any]) -> date:
        return r["starts_at"].astimezone(MOSCOW).date()

    inside = [r for r in rows if day_from <= local_day(r) <= day_to]
    counting = [r for r in inside if r["status"] != "cancelled"]
    before = {
        r["customer_id"] for r in rows if local_day(r) < day_from and r["status"] != "cancelled"
    }
    seen = {r["customer_id"] for r in counting}
    return {
        "total": len(inside),
        "booked": len(counting),
        "done": sum(r["status"] == "done" for r in inside),
        "no_show": sum(r["status"] == "no_show" for r in inside),
        "cancelled": sum(r["status"] == "cancelled" for r in inside),
        "kept": sum(
            (
                r["paid"] - (r["refund"] or 0)
                for r in inside
                if r["status"] in ("no_show", "cancelled") and r["paid"]
            ),
            Decimal(0),
        ),
        "revenue": sum((r["price"] for r in inside if r["status"] == "done"), Decimal(0)),
        "expected": sum(
            (r["price"] for r in inside if r["status"] in ("pending", "confirmed")), Decimal(0)
        ),
        "customers": len(seen),
        "new": len(seen - before),
        "services": Counter(r["service"] for r in counting),
        "staff": Counter(r["staff"] for r in counting),
        "hours": Counter(r["starts_at"].astimezone(MOSCOW).hour for r in counting),
    }


async def test_statistics_match_counts_made_independently(tenant) -> None:
    rows = await seed(tenant)
    for day_from, day_to in [
        (date(2030, 1, 1), date(2030, 1, 31)),
        (date(2030, 1, 7), date(2030, 1, 13)),
        (date(2029, 12, 1), date(2030, 3, 1)),
        (date(2031, 1, 1), date(2031, 1, 2)),  # nothing there
    ]:
        want = expected(rows, day_from, day_to)
        got = await tenant.core.analytics.stats(day_from, day_to)
        assert (
            got.total,
            got.booked,
            got.done,
            got.no_show,
            got.cancelled,
            got.revenue,
            got.kept,
            got.expected,
            got.customers,
            got.new_customers,
        ) == (
            want["total"],
            want["booked"],
            want["done"],
            want["no_show"],
            want["cancelled"],
            want["revenue"] + want["kept"],
            want["kept"],
            want["expected"],
            want["customers"],
            want["new"],
        ), (day_from, day_to)
        assert {r.name: r.bookings for r in got.top_services} == dict(want["services"])
        assert {r.name: r.bookings for r in got.top_staff} == dict(want["staff"])
        assert got.by_hour == dict(want["hours"])
        ended = want["done"] + want["no_show"]
        assert got.no_show_rate == (want["no_show"] / ended if ended else 0.0)
        assert got.cancellation_rate == (
            want["cancelled"] / want["total"] if want["total"] else 0.0
        )
    month = await tenant.core.analytics.stats(date(2030, 1, 1), date(2030, 1, 31))
    assert 0 < month.new_customers < month.customers, "the seed has both kinds"
    assert month.kept > 0, "the seed has deposits kept"


async def test_owner_sees_a_chart_and_the_numbers(start_bot, tenant) -> None:
    rows = await seed(tenant, count=200)
    want = expected(rows, date(2029, 12, 1), date(2029, 12, 31))
    bot = await start_bot()
    await say(bot.owner, "/admin")
    await tap(bot.owner, "📊 Statistics")
    await tap(bot.owner, "Other dates…")
    await say(bot.owner, "01.12.2029 31.12.2029")
    text = (await wait_for_text(bot.owner, "Busiest hours"))["text"]
    assert (
        f"Bookings: {want['booked']} (came {want['done']}, did not come {want['no_show']})" in text
    )
    assert f"cancelled: {want['cancelled']}" in text
    assert f"(new {want['new']}, returning {want['customers'] - want['new']})" in text
    [chart] = [m for m in await bot.owner.messages() if m.get("photo")]
    image = Image.open(io.BytesIO(await bot.owner.download(chart)))
    assert image.format == "PNG" and image.width > 300
    hours = want["hours"]
    bars = max(hours) - min(hours) + 1
    assert image.size == (2 * 20 + bars * 48, 360)  # one bar per hour from the first to the last


def test_chart_is_a_valid_png_with_one_bar_per_hour() -> None:
    png = bar_chart([("9", 3), ("10", 0), ("11", 7)])
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.mode == "RGB" and image.size == (2 * 20 + 3 * 48, 360)
    # the tallest bar reaches the top area, the empty hour has no bar at the axis
    column = [image.getpixel((20 + 2 * 48 + 6 + 18, y)) for y in range(360)]
    assert (52, 120, 246) in column
    empty = [image.getpixel((20 + 48 + 6 + 18, y)) for y in range(100, 300)]
    assert (52, 120, 246) not in empty
