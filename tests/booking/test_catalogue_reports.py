"""Catalogue edits, customers and phones, reports and exports."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from tenant_bot.booking import (
    Actor,
    BookingCore,
    BookingStatus,
    WorkInterval,
    mask_phone,
    normalize_phone,
)
from tenant_bot.booking.errors import (
    Conflict,
    InvalidInput,
    InvalidPhone,
    InvalidTimeZone,
    NotFound,
)
from tests.support.booking_helpers import MONDAY, FakeClock, Shop, moscow


async def test_settings(core: BookingCore) -> None:
    settings = await core.catalogue.get_settings()
    assert settings.time_zone == "Europe/Moscow" and settings.reminder_offsets_minutes == (
        1440,
        120,
    )
    updated = await core.catalogue.update_settings(
        business_name="Barber Ivan",
        phone="+49 30 1234567",
        time_zone="Europe/Berlin",
        reminder_offsets_minutes=[60, 1440],
    )
    assert updated.business_name == "Barber Ivan" and updated.phone == "+49301234567"
    assert updated.reminder_offsets_minutes == (1440, 60)
    with pytest.raises(InvalidTimeZone):
        await core.catalogue.update_settings(time_zone="Mars/Olympus")
    with pytest.raises(InvalidInput):
        await core.catalogue.update_settings(owner_password="x")
    with pytest.raises(InvalidInput):
        await core.catalogue.update_settings(slot_step_minutes=1)  # the table's CHECK, mapped


async def test_services_staff_and_hours(core: BookingCore, shop: Shop) -> None:
    massage = await core.catalogue.create_service(
        name="Massage", duration_minutes=90, price="2500.50"
    )
    assert massage.price == Decimal("2500.50") and massage.capacity == 1
    assert [s.name for s in await core.catalogue.list_services()] == ["Haircut", "Massage"]
    await core.catalogue.update_service(massage.id, active=False)
    assert [s.name for s in await core.catalogue.list_services()] == ["Haircut"]
    assert len(await core.catalogue.list_services(active_only=False)) == 2
    with pytest.raises(NotFound):
        await core.catalogue.update_service(999, name="x")
    olga = await core.catalogue.set_staff_services(shop.olga.id, [massage.id])
    assert olga.service_ids == (massage.id,)
    assert [s.id for s in await core.catalogue.list_staff(service_id=shop.service.id)] == [
        shop.ivan.id
    ]
    with pytest.raises(InvalidInput):
        await core.catalogue.set_working_hours(
            shop.ivan.id, 0, [WorkInterval.parse("09:00-13:00"), WorkInterval.parse("12:00-15:00")]
        )
    await core.catalogue.set_working_hours(
        shop.ivan.id, 0, [WorkInterval.parse("14:00-18:00"), WorkInterval.parse("09:00-13:00")]
    )
    hours = await core.catalogue.get_working_hours(shop.ivan.id)
    assert [str(i) for i in hours[0]] == ["09:00-13:00", "14:00-18:00"]
    await core.catalogue.set_working_hours(shop.ivan.id, 6, [])
    assert 6 not in await core.catalogue.get_working_hours(shop.ivan.id)
    with pytest.raises(NotFound):
        await core.catalogue.set_working_hours(999, 0, [])


async def test_exceptions_and_blocks(core: BookingCore, shop: Shop) -> None:
    short = await core.catalogue.set_date_exception(
        MONDAY, [WorkInterval.parse("10:00-12:00")], staff_id=shop.ivan.id
    )
    assert not short.day_off
    await core.catalogue.set_date_exception(MONDAY + timedelta(days=1), note="holiday")
    listed = await core.catalogue.list_date_exceptions(MONDAY, MONDAY + timedelta(days=7))
    assert [(e.staff_id, e.day_off) for e in listed] == [(shop.ivan.id, False), (None, True)]
    slots = await core.slots.free_slots(shop.service.id, day_from=MONDAY, staff_id=shop.ivan.id)
    assert [s.start for s in slots] == [
        moscow(MONDAY, 10),
        moscow(MONDAY, 10, 30),
        moscow(MONDAY, 11),
    ]
    assert await core.slots.free_slots(shop.service.id, day_from=MONDAY + timedelta(days=1)) == []
    days = await core.slots.available_days(shop.service.id, day_from=MONDAY, days=3)
    assert days == [MONDAY, MONDAY + timedelta(days=2)]
    assert await core.catalogue.clear_date_exception(MONDAY, staff_id=shop.ivan.id)
    block = await core.catalogue.block_period(
        moscow(MONDAY, 9), moscow(MONDAY, 18), reason="inventory"
    )
    assert await core.slots.free_slots(shop.service.id, day_from=MONDAY) == []
    assert [
        b.id
        for b in await core.catalogue.list_blocked_periods(moscow(MONDAY, 0), moscow(MONDAY, 23))
    ] == [block.id]
    await core.catalogue.unblock_period(block.id)
    assert len(await core.slots.free_slots(shop.service.id, day_from=MONDAY)) == 17
    with pytest.raises(InvalidInput):
        await core.catalogue.block_period(moscow(MONDAY, 10), moscow(MONDAY, 9))


async def test_customers_and_phones(core: BookingCore) -> None:
    anna = await core.customers.register(101, name=" Anna ", locale="ru-RU")
    assert (anna.name, anna.locale, anna.phone) == ("Anna", "ru", None)
    again = await core.customers.set_phone(101, "+7 (916) 123 45 67")
    assert again.id == anna.id and again.phone == "+79161234567" and again.name == "Anna"
    assert (await core.customers.by_telegram_id(101)) == again
    assert await core.customers.by_telegram_id(999) is None
    with pytest.raises(InvalidPhone) as caught:
        await core.customers.set_phone(101, "12345")
    assert caught.value.code == "invalid_phone"
    assert normalize_phone("89161234567") == "+79161234567"
    assert normalize_phone("030 1234567", region="DE") == "+49301234567"
    assert mask_phone("+79161234567") == "+7********67"
    with pytest.raises(InvalidPhone):
        normalize_phone("call me")


async def test_reports_and_exports(core: BookingCore, shop: Shop, clock: FakeClock) -> None:
    anna = await core.customers.register(101, name="=HYPERLINK(evil)", phone="89161234567")
    boris = await core.customers.register(102, name="Борис")
    done = await core.bookings.book(
        customer_id=anna.id, service_id=shop.service.id, start=moscow(MONDAY, 10)
    )
    await core.bookings.book(
        customer_id=boris.id,
        service_id=shop.service.id,
        start=moscow(MONDAY, 10),
        comment="+1 guest",
    )
    cancelled = await core.bookings.book(
        customer_id=boris.id,
        service_id=shop.service.id,
        start=moscow(MONDAY + timedelta(days=1), 10),
    )
    await core.bookings.cancel(cancelled.id, actor=Actor.owner(), reason="closed")
    clock.now = moscow(MONDAY, 12)
    await core.bookings.mark_done(done.id, actor=Actor.owner())

    summary = await core.reports.summary(MONDAY, MONDAY + timedelta(days=1))
    assert summary.total == 3
    assert summary.by_status == {"done": 1, "confirmed": 1, "cancelled": 1}
    assert summary.by_staff == {"Ivan": 2, "Olga": 1}
    assert summary.by_service == {"Haircut": 3}
    assert summary.revenue == Decimal("1500.00")
    only_monday = await core.reports.bookings(MONDAY, MONDAY, status=BookingStatus.CONFIRMED)
    assert [d.customer_name for d in only_monday] == ["Борис"]

    raw = await core.reports.export_csv(MONDAY, MONDAY + timedelta(days=1))
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "date", "start", "end", "status"]
    assert len(rows) == 4
    assert rows[1][1:4] == ["2030-01-07", "10:00", "11:00"]  # local time
    assert rows[1][8] == "'=HYPERLINK(evil)"  # no formula injection
    assert "'+1 guest" in [r[13] for r in rows]

    book = load_workbook(
        io.BytesIO(await core.reports.export_xlsx(MONDAY, MONDAY + timedelta(days=1)))
    )
    sheet = book["bookings"]
    assert sheet.max_row == 4 and sheet.cell(1, 1).value == "id"
    assert {sheet.cell(r, 9).value for r in range(2, 5)} == {"'=HYPERLINK(evil)", "Борис"}
    with pytest.raises(InvalidInput):
        await core.reports.summary(MONDAY, MONDAY - timedelta(days=1))


async def test_duplicate_customer_race_maps_to_domain(core: BookingCore) -> None:
    import asyncio

    results = await asyncio.gather(
        *(core.customers.register(555, name=str(i)) for i in range(10)), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, Conflict)]
    assert len({r.id for r in results if not isinstance(r, BaseException)}) == 1


def test_deadlocks_are_retried_then_reported_as_busy() -> None:
    import asyncio

    import asyncpg

    from tenant_bot.booking.db import map_error, retry_busy
    from tenant_bot.booking.errors import StorageBusy

    assert isinstance(map_error(asyncpg.DeadlockDetectedError("deadlock detected")), StorageBusy)
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise StorageBusy("collided")
        return "ok"

    assert asyncio.run(retry_busy(flaky)) == "ok" and len(calls) == 3

    async def always() -> str:
        raise StorageBusy("collided")

    with pytest.raises(StorageBusy):
        asyncio.run(retry_busy(always, attempts=2))
