"""SQL for deposits: the payment set-up, holds awaiting payment, payments, refunds due."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from tenant_bot.booking.models import ActorKind, Booking, PaymentSettings
from tenant_bot.booking.repositories.bookings import booking_from_row

PAYMENT_SETTINGS_COLUMNS = frozenset(
    {
        "provider_token",
        "hold_minutes",
        "receipts",
        "receipt_vat_code",
        "free_cancel_hours",
        "late_keep_percent",
    }
)


def payment_settings_from_row(row: asyncpg.Record) -> PaymentSettings:
    return PaymentSettings(
        provider_token=row["provider_token"],
        hold_minutes=row["hold_minutes"],
        receipts=row["receipts"],
        receipt_vat_code=row["receipt_vat_code"],
        free_cancel_hours=row["free_cancel_hours"],
        late_keep_percent=row["late_keep_percent"],
    )


async def get_settings(conn: asyncpg.Connection) -> PaymentSettings:
    return payment_settings_from_row(await conn.fetchrow("SELECT * FROM payment_settings"))


async def update_settings(
    conn: asyncpg.Connection, changes: Mapping[str, Any], now: datetime
) -> PaymentSettings:
    unknown = set(changes) - PAYMENT_SETTINGS_COLUMNS
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    names = sorted(changes)  # whitelisted above: never a caller's string unchecked
    clause = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    row = await conn.fetchrow(
        f"UPDATE payment_settings SET {clause}, updated_at = $1 RETURNING *",
        now,
        *[changes[name] for name in names],
    )
    return payment_settings_from_row(row)


async def extend_hold(conn: asyncpg.Connection, booking_id: int, until: datetime) -> None:
    await conn.execute(
        "UPDATE bookings SET hold_until = greatest(hold_until, $2) WHERE id = $1",
        booking_id,
        until,
    )


async def find_by_charge(conn: asyncpg.Connection, telegram_charge_id: str) -> Booking | None:
    row = await conn.fetchrow(
        "SELECT * FROM bookings WHERE telegram_charge_id = $1", telegram_charge_id
    )
    return booking_from_row(row) if row else None


async def record_payment(
    conn: asyncpg.Connection,
    booking: Booking,
    *,
    amount: Decimal,
    telegram_charge_id: str,
    provider_charge_id: str,
    now: datetime,
    confirm: bool,
    refund_due: Decimal | None,
    refund_reason: str | None,
    notify: bool,
) -> Booking:
    """The payment on the (locked) booking; with ``confirm`` the booking is confirmed too, with its
    history entry, in one statement; with ``notify`` (paid in time) its new-booking notices are
    armed (migration 0070)."""
    row = await conn.fetchrow(
        """
        WITH paid AS (
            UPDATE bookings SET payment = 'paid', paid_amount = $2, paid_at = $5,
                telegram_charge_id = $3, provider_charge_id = $4, hold_until = NULL,
                status = CASE WHEN $6 THEN 'confirmed' ELSE status END,
                refund_due = $7, refund_reason = $8, updated_at = $5,
                -- paid in time: the new-booking notices are owed from this commit on (0070)
                notice_armed = CASE WHEN $10 THEN true ELSE notice_armed END
            WHERE id = $1 RETURNING *
        ), history AS (
            INSERT INTO booking_history (booking_id, at, actor, actor_id, from_status, to_status,
                                         reason)
            SELECT id, $5, 'system', NULL, $9, status, 'deposit paid' FROM paid WHERE $6
        )
        SELECT * FROM paid
        """,
        booking.id,
        amount,
        telegram_charge_id,
        provider_charge_id,
        now,
        confirm,
        refund_due,
        refund_reason,
        booking.status.value,
        notify,
    )
    return booking_from_row(row)


async def settle(
    conn: asyncpg.Connection,
    booking_id: int,
    *,
    release: bool,
    refund_due: Decimal | None,
    refund_reason: str | None,
) -> Booking:
    """After a status change: an unpaid hold is released, a paid deposit gets its refund due."""
    row = await conn.fetchrow(
        """
        UPDATE bookings SET
            payment = CASE WHEN $2 THEN 'released' ELSE payment END,
            hold_until = CASE WHEN $2 THEN NULL ELSE hold_until END,
            refund_due = coalesce($3, refund_due), refund_reason = coalesce($4, refund_reason)
        WHERE id = $1 RETURNING *
        """,
        booking_id,
        release,
        refund_due,
        refund_reason,
    )
    return booking_from_row(row)


async def expire_holds(conn: asyncpg.Connection, now: datetime, *, limit: int) -> list[Booking]:
    """Cancel bookings whose hold ran out unpaid (each once: locked rows are another's, skipped),
    with their history, their unsent reminders cancelled, and marked for the waitlist."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT id FROM bookings
            WHERE payment = 'awaiting' AND hold_until <= $1 AND status = 'pending'
            ORDER BY hold_until LIMIT $2
            FOR UPDATE SKIP LOCKED
        ), expired AS (
            UPDATE bookings b SET status = 'cancelled', cancelled_by = 'system',
                cancel_reason = 'payment not received', payment = 'released', hold_until = NULL,
                release_pending = true, updated_at = $1
            FROM due WHERE b.id = due.id
            RETURNING b.*
        ), history AS (
            INSERT INTO booking_history (booking_id, at, actor, from_status, to_status, reason)
            SELECT id, $1, $3, 'pending', 'cancelled', 'payment not received' FROM expired
        ), reminder AS (
            UPDATE reminders SET status = 'cancelled'
            WHERE booking_id IN (SELECT id FROM expired) AND status = 'pending'
        )
        SELECT * FROM expired
        """,
        now,
        limit,
        ActorKind.SYSTEM.value,
    )
    return [booking_from_row(r) for r in rows]


async def next_hold_end(conn: asyncpg.Connection) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(hold_until) FROM bookings WHERE payment = 'awaiting' AND status = 'pending'"
    )
    return value


async def pending_releases(conn: asyncpg.Connection, *, limit: int) -> list[Booking]:
    rows = await conn.fetch(
        "SELECT * FROM bookings WHERE release_pending ORDER BY id LIMIT $1", limit
    )
    return [booking_from_row(r) for r in rows]


async def release_done(conn: asyncpg.Connection, booking_id: int) -> None:
    await conn.execute("UPDATE bookings SET release_pending = false WHERE id = $1", booking_id)


async def mark_refunded(conn: asyncpg.Connection, booking_id: int, now: datetime) -> Booking | None:
    row = await conn.fetchrow(
        "UPDATE bookings SET refunded_at = coalesce(refunded_at, $2)"
        " WHERE id = $1 AND refund_due > 0 RETURNING *",
        booking_id,
        now,
    )
    return booking_from_row(row) if row else None
