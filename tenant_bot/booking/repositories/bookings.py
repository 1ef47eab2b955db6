"""SQL for bookings, their history, their reminders' rescheduling and idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg

from tenant_bot.booking.errors import StorageError
from tenant_bot.booking.models import (
    ActorKind,
    Booking,
    BookingDetails,
    BookingStatus,
    HistoryEntry,
    PaymentState,
)

ACTIVE = ("pending", "confirmed")

DETAILS_SELECT = """
    SELECT b.*, sv.name AS service_name, st.name AS staff_name, c.name AS customer_name,
           c.phone AS customer_phone, c.telegram_user_id AS customer_telegram_id,
           c.locale AS customer_locale
    FROM bookings b
    JOIN services sv ON sv.id = b.service_id
    JOIN staff st ON st.id = b.staff_id
    JOIN customers c ON c.id = b.customer_id
"""


def booking_from_row(row: asyncpg.Record) -> Booking:
    return Booking(
        id=row["id"],
        customer_id=row["customer_id"],
        service_id=row["service_id"],
        staff_id=row["staff_id"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        seat=row["seat"],
        status=BookingStatus(row["status"]),
        price=row["price"],
        currency=row["currency"].strip(),
        comment=row["comment"],
        cancel_reason=row["cancel_reason"],
        cancelled_by=row["cancelled_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        customer_confirmed_at=row.get("customer_confirmed_at"),
        deposit=row["deposit"],
        payment=PaymentState(row["payment"]),
        hold_until=row["hold_until"],
        paid_amount=row["paid_amount"],
        refund_due=row["refund_due"],
        refunded_at=row["refunded_at"],
        provider_charge_id=row["provider_charge_id"],
    )


def details_from_row(row: asyncpg.Record) -> BookingDetails:
    return BookingDetails(
        booking=booking_from_row(row),
        service_name=row["service_name"],
        staff_name=row["staff_name"],
        customer_name=row["customer_name"],
        customer_phone=row["customer_phone"],
        customer_telegram_id=row["customer_telegram_id"],
        customer_locale=row["customer_locale"],
    )


class SlotRequest(NamedTuple):
    """One request of a ``book_slots`` batch: the fields of the ``booking_request`` type, in order."""

    customer_id: int
    service_id: int
    staff_id: int
    starts_at: datetime
    ends_at: datetime
    occupied_from: datetime
    occupied_until: datetime
    status: str
    comment: str
    active_limit: int | None  # None: no customer lock and no limit (owner bookings)
    actor: str
    actor_id: int | None
    reminder_offsets: list[int]
    idempotency_key: str | None
    local_day: date
    catalogue_version: int | None  # None: no staleness check
    capacity: int


SlotOutcome = tuple[str, Booking | None]


# the fields a Booking has, taken out of the row here so that no other column is sent or decoded
BOOK_SLOTS_SQL = """
    SELECT r.ordinal, r.outcome, (r.booking).id, (r.booking).customer_id, (r.booking).service_id,
           (r.booking).staff_id, (r.booking).starts_at, (r.booking).ends_at, (r.booking).seat,
           (r.booking).status, (r.booking).price, (r.booking).currency, (r.booking).comment,
           (r.booking).cancel_reason, (r.booking).cancelled_by, (r.booking).created_at,
           (r.booking).updated_at, (r.booking).deposit, (r.booking).payment,
           (r.booking).hold_until, (r.booking).paid_amount, (r.booking).refund_due,
           (r.booking).refunded_at, (r.booking).provider_charge_id
    FROM book_slots($1::booking_request[], $2, $3::numeric[]) AS r
"""


async def book_slots(
    conn: asyncpg.Connection,
    requests: Sequence[SlotRequest],
    *,
    now: datetime,
    deposits: Sequence[Decimal] = (),
) -> list[SlotOutcome]:
    """Take a batch of slots in one round trip and one transaction (``book_slots``, migration 0004).

    One (outcome, booking) per request, in order: ``ok`` with the booking, or ``no_customer`` /
    ``limit`` / ``stale`` / ``full`` / ``no_service`` / ``taken`` / ``duplicate`` without one.
    """
    rows = await conn.fetch(BOOK_SLOTS_SQL, requests, now, list(deposits))
    if len(rows) != len(requests):
        raise StorageError(f"book_slots answered {len(rows)} rows for {len(requests)} requests")
    outcomes: list[SlotOutcome] = [("", None)] * len(requests)
    for row in rows:  # in request order already; placed by ordinal all the same
        outcomes[row["ordinal"] - 1] = (
            row["outcome"],
            booking_from_row(row) if row["id"] is not None else None,
        )
    return outcomes


async def init_connection(conn: asyncpg.Connection) -> None:
    """The pool's ``init`` for a tenant bot: prepare the booking statement on each new connection
    (an empty batch), so no customer's booking waits while it is parsed and the ``booking_request``
    type's codec is loaded."""
    await book_slots(conn, [], now=datetime.now(UTC))


async def lock_staff_writes(conn: asyncpg.Connection, staff_id: int) -> None:
    """Serialise writers of one staff member's bookings until commit (``book_slots`` takes the same
    lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock(staff_lock_key($1))", staff_id)


async def taken_seats(
    conn: asyncpg.Connection, *, staff_id: int, service_id: int, starts_at: datetime
) -> set[int]:
    rows = await conn.fetch(
        "SELECT seat FROM bookings WHERE staff_id = $1"
        " AND service_id = $2 AND starts_at = $3 AND status IN ('pending', 'confirmed')",
        staff_id,
        service_id,
        starts_at,
    )
    return {r["seat"] for r in rows}


async def find_by_idempotency_key(
    conn: asyncpg.Connection, customer_id: int, key: str
) -> Booking | None:
    row = await conn.fetchrow(
        "SELECT * FROM bookings WHERE customer_id = $1 AND idempotency_key = $2", customer_id, key
    )
    return booking_from_row(row) if row else None


async def purge_idempotency_keys(conn: asyncpg.Connection, before: datetime) -> int:
    status = await conn.execute(
        "UPDATE bookings SET idempotency_key = NULL"
        " WHERE idempotency_key IS NOT NULL AND created_at < $1",
        before,
    )
    return int(status.split()[-1])


async def lock_booking(conn: asyncpg.Connection, booking_id: int) -> tuple[Booking, int] | None:
    """Row-lock a booking; returns it with its customer's Telegram id (for ownership checks)."""
    row = await conn.fetchrow(
        "SELECT b.*, c.telegram_user_id AS customer_telegram_id FROM bookings b"
        " JOIN customers c ON c.id = b.customer_id WHERE b.id = $1 FOR UPDATE OF b",
        booking_id,
    )
    return (booking_from_row(row), row["customer_telegram_id"]) if row else None


async def get_details(conn: asyncpg.Connection, booking_id: int) -> BookingDetails | None:
    row = await conn.fetchrow(DETAILS_SELECT + " WHERE b.id = $1", booking_id)
    return details_from_row(row) if row else None


async def set_status(
    conn: asyncpg.Connection,
    booking: Booking,
    *,
    to: BookingStatus,
    now: datetime,
    actor: ActorKind,
    actor_id: int | None,
    reason: str | None,
) -> Booking:
    """Change the status, record it, and cancel unsent reminders when the booking stops being active."""
    row = await conn.fetchrow(
        """
        WITH changed AS (
            UPDATE bookings SET status = $2, updated_at = $3,
                cancel_reason = CASE WHEN $2 = 'cancelled' THEN $6 ELSE cancel_reason END,
                cancelled_by = CASE WHEN $2 = 'cancelled' THEN $4 ELSE cancelled_by END
            WHERE id = $1 RETURNING *
        ), history AS (
            INSERT INTO booking_history (booking_id, at, actor, actor_id, from_status, to_status,
                                         reason)
            SELECT id, $3, $4, $5, $7, status, $6 FROM changed
        ), reminder AS (
            UPDATE reminders SET status = 'cancelled'
            WHERE booking_id = $1 AND status = 'pending' AND $2 NOT IN ('pending', 'confirmed')
        )
        SELECT * FROM changed
        """,
        booking.id,
        to.value,
        now,
        actor.value,
        actor_id,
        reason,
        booking.status.value,
    )
    return booking_from_row(row)


async def move_booking(
    conn: asyncpg.Connection,
    booking: Booking,
    *,
    staff_id: int,
    starts_at: datetime,
    ends_at: datetime,
    occupied: tuple[datetime, datetime],
    seat: int,
    now: datetime,
    actor: ActorKind,
    actor_id: int | None,
    reminder_offsets: Sequence[int],
) -> Booking:
    """Move the booking (one row update, so the old time is freed as the new one is taken).

    Reminders follow it: the offsets still ahead of the new time are armed again (their claims, sent
    or not, are forgotten, so each is sent for the new time) and other unsent claims are cancelled.
    """
    row = await conn.fetchrow(
        """
        WITH armed AS (
            SELECT array(SELECT o FROM unnest($12::int[]) AS o
                         WHERE $3::timestamptz - make_interval(mins => o) > $8) AS offsets
        ), moved AS (
            UPDATE bookings SET staff_id = $2, starts_at = $3, ends_at = $4,
                occupied = tstzrange($5, $6), seat = $7, updated_at = $8,
                -- "I'll come" was said of the old time
                customer_confirmed_at = CASE WHEN starts_at = $3 THEN customer_confirmed_at END,
                reminder_offsets = armed.offsets,
                first_reminder_at = $3::timestamptz - make_interval(
                    mins => (SELECT max(o) FROM unnest(armed.offsets) AS o))
            FROM armed
            WHERE id = $1 RETURNING bookings.*
        ), history AS (
            INSERT INTO booking_history (booking_id, at, actor, actor_id, from_status, to_status,
                                         from_starts_at, to_starts_at)
            SELECT id, $8, $9, $10, status, status, $11, starts_at FROM moved
        ), rearmed AS (
            DELETE FROM reminders WHERE booking_id = $1
                AND offset_minutes = ANY ((SELECT offsets FROM armed)::int[])
        ), dropped AS (
            UPDATE reminders SET status = 'cancelled', claim_token = NULL, claimed_until = NULL
            WHERE booking_id = $1 AND status = 'pending'
                AND NOT offset_minutes = ANY ((SELECT offsets FROM armed)::int[])
        )
        SELECT * FROM moved
        """,
        booking.id,
        staff_id,
        starts_at,
        ends_at,
        occupied[0],
        occupied[1],
        seat,
        now,
        actor.value,
        actor_id,
        booking.starts_at,
        list(reminder_offsets),
    )
    return booking_from_row(row)


async def history(conn: asyncpg.Connection, booking_id: int) -> list[HistoryEntry]:
    rows = await conn.fetch(
        "SELECT * FROM booking_history WHERE booking_id = $1 ORDER BY id", booking_id
    )
    return [
        HistoryEntry(
            at=r["at"],
            actor=ActorKind(r["actor"]),
            actor_id=r["actor_id"],
            from_status=BookingStatus(r["from_status"]) if r["from_status"] else None,
            to_status=BookingStatus(r["to_status"]),
            from_starts_at=r["from_starts_at"],
            to_starts_at=r["to_starts_at"],
            reason=r["reason"],
        )
        for r in rows
    ]


async def list_details(
    conn: asyncpg.Connection,
    *,
    customer_id: int | None = None,
    staff_id: int | None = None,
    service_id: int | None = None,
    status: str | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    active_only: bool = False,
    ends_after: datetime | None = None,
    ends_before: datetime | None = None,
    limit: int = 1000,
) -> list[BookingDetails]:
    """Bookings with names, filtered; every filter is optional."""
    rows = await conn.fetch(
        DETAILS_SELECT
        + """
        WHERE ($1::bigint IS NULL OR b.customer_id = $1)
          AND ($2::bigint IS NULL OR b.staff_id = $2)
          AND ($3::bigint IS NULL OR b.service_id = $3)
          AND ($4::text IS NULL OR b.status = $4)
          AND ($5::timestamptz IS NULL OR b.starts_at >= $5)
          AND ($6::timestamptz IS NULL OR b.starts_at < $6)
          AND (NOT $7 OR b.status IN ('pending', 'confirmed'))
          AND ($8::timestamptz IS NULL OR b.ends_at > $8)
          AND ($10::timestamptz IS NULL OR b.ends_at <= $10)
        ORDER BY b.starts_at, b.staff_id, b.seat, b.id
        LIMIT $9
        """,
        customer_id,
        staff_id,
        service_id,
        status,
        starts_from,
        starts_before,
        active_only,
        ends_after,
        limit,
        ends_before,
    )
    return [details_from_row(r) for r in rows]
