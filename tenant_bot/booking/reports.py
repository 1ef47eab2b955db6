"""ReportService: bookings in a range of local days, counted and exported as CSV or XLSX bytes."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import TypedDict, Unpack

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import InvalidInput
from tenant_bot.booking.models import BookingDetails, BookingStatus, Clock, ReportSummary, utc_now
from tenant_bot.booking.repositories import bookings as bookings_repo
from tenant_bot.booking.repositories import catalogue as catalogue_repo
from tenant_bot.booking.repositories import reports as repo
from tenant_bot.booking.slots import to_utc

MAX_ROWS = 50_000
EXPORT_COLUMNS = (
    "id",
    "date",
    "start",
    "end",
    "status",
    "service",
    "staff",
    "seat",
    "customer",
    "phone",
    "telegram_id",
    "price",
    "currency",
    "comment",
    "cancel_reason",
    # deposits (issue 19): asked, where the payment stands (none, awaiting, paid, released), paid,
    # owed back to the customer, and when the owner said the refund was made
    "deposit",
    "payment",
    "paid",
    "refund_due",
    "refunded_at",
)

# Spreadsheet apps execute cells starting with these; user-typed text is prefixed with "'" (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class BookingFilters(TypedDict, total=False):
    """The optional filters of :meth:`ReportService.bookings`, passed on by the exports."""

    status: BookingStatus | None
    service_id: int | None
    staff_id: int | None


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


class ReportService:
    """Range queries for the owner; ranges are inclusive local days in the tenant's time zone."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def bookings(
        self,
        day_from: date,
        day_to: date,
        *,
        status: BookingStatus | None = None,
        service_id: int | None = None,
        staff_id: int | None = None,
    ) -> list[BookingDetails]:
        """Bookings starting on ``day_from..day_to``, optionally by status/service/staff."""
        if day_to < day_from:
            raise InvalidInput("day_to", "must not be before day_from")
        async with self._db.connection() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
            return await bookings_repo.list_details(
                conn,
                status=status.value if status else None,
                service_id=service_id,
                staff_id=staff_id,
                starts_from=to_utc(day_from, 0, zone),
                starts_before=to_utc(day_to, 1440, zone),
                limit=MAX_ROWS,
            )

    async def summary(
        self,
        day_from: date,
        day_to: date,
        *,
        status: BookingStatus | None = None,
        service_id: int | None = None,
        staff_id: int | None = None,
    ) -> ReportSummary:
        """Counts by status, service and staff, and revenue of ``done`` bookings."""
        if day_to < day_from:
            raise InvalidInput("day_to", "must not be before day_from")
        async with self._db.connection() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
            rows = await repo.summary_rows(
                conn,
                starts_from=to_utc(day_from, 0, zone),
                starts_before=to_utc(day_to, 1440, zone),
                status=status.value if status else None,
                service_id=service_id,
                staff_id=staff_id,
            )
        result = ReportSummary(total=0)
        total, revenue = 0, Decimal(0)
        for r in rows:
            if r["level"] == 0b111:  # the grand total row
                total, revenue = r["n"], r["revenue"]
            elif r["status"] is not None:
                result.by_status[r["status"]] = r["n"]
            elif r["service_name"] is not None:
                result.by_service[r["service_name"]] = r["n"]
            elif r["staff_name"] is not None:
                result.by_staff[r["staff_name"]] = r["n"]
        return ReportSummary(
            total=total,
            by_status=result.by_status,
            by_service=result.by_service,
            by_staff=result.by_staff,
            revenue=revenue,
        )

    async def export_rows(
        self, day_from: date, day_to: date, **filters: Unpack[BookingFilters]
    ) -> list[list[object]]:
        """Header + one row per booking, local times, as plain values for CSV/XLSX writers."""
        found = await self.bookings(day_from, day_to, **filters)
        async with self._db.connection() as conn:
            zone = (await catalogue_repo.get_settings(conn)).zone
        rows: list[list[object]] = [list(EXPORT_COLUMNS)]
        for d in found:
            b = d.booking
            start, end = b.starts_at.astimezone(zone), b.ends_at.astimezone(zone)
            rows.append(
                [
                    b.id,
                    start.date().isoformat(),
                    start.strftime("%H:%M"),
                    end.strftime("%H:%M"),
                    b.status.value,
                    _safe(d.service_name),
                    _safe(d.staff_name),
                    b.seat,
                    _safe(d.customer_name),
                    d.customer_phone or "",
                    d.customer_telegram_id,
                    b.price,
                    b.currency,
                    _safe(b.comment),
                    _safe(b.cancel_reason or ""),
                    b.deposit,
                    b.payment.value,
                    b.paid_amount if b.paid_amount is not None else "",
                    b.refund_due if b.refund_due is not None else "",
                    b.refunded_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                    if b.refunded_at
                    else "",
                ]
            )
        return rows

    async def export_csv(
        self, day_from: date, day_to: date, **filters: Unpack[BookingFilters]
    ) -> bytes:
        """UTF-8 CSV with a BOM (so Excel opens Cyrillic correctly)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in await self.export_rows(day_from, day_to, **filters):
            writer.writerow(row)
        return buffer.getvalue().encode("utf-8-sig")

    async def export_xlsx(
        self, day_from: date, day_to: date, **filters: Unpack[BookingFilters]
    ) -> bytes:
        """An XLSX workbook with one sheet of bookings."""
        from openpyxl import Workbook  # ~8 MB: imported by the owners who export, not every bot

        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "bookings"
        for row in await self.export_rows(day_from, day_to, **filters):
            sheet.append([float(v) if isinstance(v, Decimal) else v for v in row])
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()
