"""SQL over ``control.subscriptions``: one per tenant, with the paid period and lifecycle marks.

The lifecycle selects due rows with ``FOR UPDATE OF s SKIP LOCKED`` inside the caller's transaction,
so several lifecycle runners share the work and none handles a row twice. Every "due" query can be
narrowed to some tenants (``tenant_ids``), which operators and tests use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from fleet.db import Executor

_DUE_SELECT = (
    "SELECT s.*, t.slug, t.status AS tenant_status, t.desired_state, t.owner_telegram_ids"
    " FROM control.subscriptions s JOIN control.tenants t ON t.id = s.tenant_id"
    " WHERE t.deleted_at IS NULL AND s.lifecycle_failed_at IS NULL"
    " AND ($1::bigint[] IS NULL OR s.tenant_id = ANY($1::bigint[]))"
)
_DUE_LOCK = " ORDER BY s.current_period_end, s.id LIMIT $2 FOR UPDATE OF s SKIP LOCKED"


def _ids(tenant_ids: Sequence[int] | None) -> list[int] | None:
    return list(tenant_ids) if tenant_ids is not None else None


async def lock_for_tenant(conn: asyncpg.Connection, tenant_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM control.subscriptions WHERE tenant_id = $1 FOR UPDATE", tenant_id
    )


async def get_for_tenant(db: Executor, tenant_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM control.subscriptions WHERE tenant_id = $1", tenant_id)


async def insert_subscription(
    conn: asyncpg.Connection,
    *,
    tenant_id: int,
    plan_code: str,
    period_start: datetime,
    period_end: datetime,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO control.subscriptions"
        " (tenant_id, plan_code, status, current_period_start, current_period_end)"
        " VALUES ($1, $2, 'active', $3, $4) RETURNING *",
        tenant_id,
        plan_code,
        period_start,
        period_end,
    )
    assert row is not None
    return row


async def start_period(
    conn: asyncpg.Connection,
    subscription_id: int,
    *,
    plan_code: str,
    period_start: datetime,
    period_end: datetime,
) -> asyncpg.Record:
    """A paid period: active again, reminders and suspension forgotten."""
    row = await conn.fetchrow(
        "UPDATE control.subscriptions SET plan_code = $2, status = 'active',"
        " current_period_start = $3, current_period_end = $4, reminders_sent = '{}',"
        " suspended_at = NULL, updated_at = now() WHERE id = $1 RETURNING *",
        subscription_id,
        plan_code,
        period_start,
        period_end,
    )
    assert row is not None
    return row


async def save_payment_method(
    conn: asyncpg.Connection, tenant_id: int, *, method_id_enc: str, title: str | None
) -> None:
    """Remember a saved payment method and turn auto-renewal on (the owner asked to save it)."""
    await conn.execute(
        "UPDATE control.subscriptions SET payment_method_id_enc = $2, payment_method_title = $3,"
        " auto_renew = true, updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        method_id_enc,
        title,
    )


async def set_auto_renew(db: Executor, tenant_id: int, *, enabled: bool) -> asyncpg.Record | None:
    return await db.fetchrow(
        "UPDATE control.subscriptions SET auto_renew = $2, updated_at = now()"
        " WHERE tenant_id = $1 RETURNING *",
        tenant_id,
        enabled,
    )


async def add_marks(conn: Executor, subscription_id: int, marks: Sequence[str]) -> None:
    """Remember reminders/warnings sent this period (so each is sent once)."""
    await conn.execute(
        "UPDATE control.subscriptions SET reminders_sent ="
        " ARRAY(SELECT DISTINCT unnest(reminders_sent || $2::text[])), updated_at = now()"
        " WHERE id = $1",
        subscription_id,
        list(marks),
    )


async def set_status(
    conn: Executor,
    subscription_id: int,
    *,
    status: str,
    suspended_at: datetime | None = None,
) -> None:
    await conn.execute(
        "UPDATE control.subscriptions SET status = $2,"
        " suspended_at = coalesce($3, suspended_at), updated_at = now() WHERE id = $1",
        subscription_id,
        status,
        suspended_at,
    )


async def claim_reminders_due(
    conn: asyncpg.Connection,
    *,
    now: datetime,
    reminder_days: Sequence[int],
    tenant_ids: Sequence[int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Active subscriptions still running with a reminder reached but not sent: some offset ``d``
    of ``reminder_days`` with ``end - now <= d days`` and no ``'<d>d'`` mark yet."""
    return await conn.fetch(
        _DUE_SELECT + " AND s.status = 'active' AND s.current_period_end > $3"
        " AND EXISTS (SELECT 1 FROM unnest($4::int[]) AS d"
        "   WHERE s.current_period_end - $3 <= make_interval(days => d)"
        "   AND NOT ((d::text || 'd') = ANY(s.reminders_sent)))" + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        now,
        list(reminder_days),
    )


async def claim_renewals_due(
    conn: asyncpg.Connection,
    *,
    now: datetime,
    horizon: datetime,
    tenant_ids: Sequence[int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Auto-renewing subscriptions ending within (now, horizon] whose period was not charged yet
    (a charge still ``new`` never reached YooKassa and is retried with its key)."""
    return await conn.fetch(
        _DUE_SELECT + " AND s.status = 'active' AND s.auto_renew"
        " AND s.payment_method_id_enc IS NOT NULL"
        " AND s.current_period_end > $3 AND s.current_period_end <= $4"
        " AND NOT EXISTS (SELECT 1 FROM control.payments p WHERE p.tenant_id = s.tenant_id"
        "   AND p.purpose = 'auto_renewal' AND p.renews_period_end = s.current_period_end"
        "   AND p.status <> 'new')" + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        now,
        horizon,
    )


async def claim_expired(
    conn: asyncpg.Connection, *, now: datetime, tenant_ids: Sequence[int] | None, limit: int
) -> list[asyncpg.Record]:
    """Active subscriptions whose period has ended."""
    return await conn.fetch(
        _DUE_SELECT + " AND s.status = 'active' AND s.current_period_end <= $3" + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        now,
    )


async def claim_grace_over(
    conn: asyncpg.Connection,
    *,
    ended_before: datetime,
    tenant_ids: Sequence[int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Subscriptions in grace whose period ended before ``ended_before`` (= now - grace)."""
    return await conn.fetch(
        _DUE_SELECT + " AND s.status = 'grace' AND s.current_period_end <= $3" + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        ended_before,
    )


async def claim_deletion_warnings_due(
    conn: asyncpg.Connection,
    *,
    suspended_before: datetime,
    tenant_ids: Sequence[int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Suspended subscriptions (status ``expired``) suspended before ``suspended_before`` whose
    owner was not yet warned of the deletion."""
    return await conn.fetch(
        _DUE_SELECT + " AND s.status = 'expired' AND s.suspended_at <= $3"
        " AND s.deletion_warned_at IS NULL" + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        suspended_before,
    )


async def claim_deletions_due(
    conn: asyncpg.Connection,
    *,
    suspended_before: datetime,
    warned_before: datetime,
    tenant_ids: Sequence[int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Suspended subscriptions past retention whose owner was warned long enough ago."""
    return await conn.fetch(
        _DUE_SELECT + " AND s.status = 'expired' AND s.suspended_at <= $3"
        " AND s.deletion_warned_at <= $4" + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        suspended_before,
        warned_before,
    )


async def mark_deletion_warned(conn: Executor, subscription_id: int, *, now: datetime) -> None:
    await conn.execute(
        "UPDATE control.subscriptions SET deletion_warned_at = $2, updated_at = now()"
        " WHERE id = $1",
        subscription_id,
        now,
    )


async def set_aside(conn: Executor, subscription_id: int, *, error: str) -> None:
    """A lifecycle step failed on this subscription for a reason no retry fixes: later runs skip
    it until an operator retries it (:func:`retry_lifecycle`)."""
    await conn.execute(
        "UPDATE control.subscriptions SET lifecycle_failed_at = now(), lifecycle_error = $2,"
        " updated_at = now() WHERE id = $1",
        subscription_id,
        error[:2000],
    )


async def list_set_aside(db: Executor) -> list[asyncpg.Record]:
    """Subscriptions the lifecycle set aside, oldest first, with their tenant's slug."""
    return await db.fetch(
        "SELECT s.id, s.tenant_id, t.slug, s.status, s.current_period_end,"
        " s.lifecycle_failed_at, s.lifecycle_error"
        " FROM control.subscriptions s JOIN control.tenants t ON t.id = s.tenant_id"
        " WHERE s.lifecycle_failed_at IS NOT NULL ORDER BY s.lifecycle_failed_at, s.id"
    )


async def count_set_aside(db: Executor) -> int:
    """How many subscriptions the lifecycle set aside (for metrics)."""
    return int(
        await db.fetchval(
            "SELECT count(*) FROM control.subscriptions WHERE lifecycle_failed_at IS NOT NULL"
        )
    )


async def retry_lifecycle(db: Executor, subscription_id: int) -> bool:
    """Put a set-aside subscription back in the lifecycle's hands; False if it was not set aside."""
    status = await db.execute(
        "UPDATE control.subscriptions SET lifecycle_failed_at = NULL, updated_at = now()"
        " WHERE id = $1 AND lifecycle_failed_at IS NOT NULL",
        subscription_id,
    )
    return status.endswith(" 1")


async def claim_abandoned_purchases(
    conn: asyncpg.Connection,
    *,
    created_before: datetime,
    tenant_ids: Sequence[int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Unpaid tenants (status ``new``, never paid) older than ``created_before``: purchases the
    buyer abandoned, whose bot token should be released."""
    return await conn.fetch(
        "SELECT t.* FROM control.tenants t WHERE t.status = 'new' AND t.deleted_at IS NULL"
        " AND t.desired_state = 'stopped' AND t.created_at <= $3"
        " AND ($1::bigint[] IS NULL OR t.id = ANY($1::bigint[]))"
        " AND NOT EXISTS (SELECT 1 FROM control.payments p WHERE p.tenant_id = t.id"
        "   AND (p.applied_at IS NOT NULL OR (p.status = 'pending' AND p.created_at > $3)))"
        " ORDER BY t.id LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
        _ids(tenant_ids),
        limit,
        created_before,
    )


async def list_for_owner(db: Executor, owner_telegram_id: int) -> list[asyncpg.Record]:
    """An owner's live tenants with their subscription and plan (missing ones as NULLs)."""
    return await db.fetch(
        "SELECT t.id AS tenant_id, t.slug, t.display_name, t.bot_username, t.status,"
        " t.desired_state, t.locale, t.timezone, t.plan_code AS tenant_plan_code, t.created_at,"
        " s.id AS subscription_id, s.status AS subscription_status, s.current_period_end,"
        " s.auto_renew, s.payment_method_id_enc IS NOT NULL AS has_payment_method,"
        " s.payment_method_title, p.name AS plan_name, p.translations AS plan_translations,"
        " p.price, p.currency, p.period_days, s.plan_code, s.scheduled_plan_at,"
        " s.autopay_consent IS NOT NULL AS autopay_consented,"
        " n.code AS next_plan_code, n.name AS next_plan_name,"
        " n.translations AS next_plan_translations, n.price AS next_price,"
        " n.period_days AS next_period_days"
        " FROM control.tenants t"
        " LEFT JOIN control.subscriptions s ON s.tenant_id = t.id"
        " LEFT JOIN control.plans p ON p.code = coalesce(s.plan_code, t.plan_code)"
        " LEFT JOIN control.plans n ON n.code = s.scheduled_plan_code"
        " WHERE t.deleted_at IS NULL AND $1 = ANY(t.owner_telegram_ids)"
        " ORDER BY t.created_at, t.id",
        owner_telegram_id,
    )


# -- plan changes and auto-renewal consent (issue 18) -------------------------------------------


async def schedule_plan(
    conn: Executor, tenant_id: int, *, plan_code: str | None, at: datetime | None
) -> None:
    """Set (or, with None, clear) the plan the subscription moves to at ``at``."""
    await conn.execute(
        "UPDATE control.subscriptions SET scheduled_plan_code = $2, scheduled_plan_at = $3,"
        " updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        plan_code,
        at,
    )


async def switch_plan(conn: Executor, tenant_id: int, *, plan_code: str) -> None:
    """Move the subscription to ``plan_code`` now, its period unchanged; any schedule dropped."""
    await conn.execute(
        "UPDATE control.subscriptions SET plan_code = $2, scheduled_plan_code = NULL,"
        " scheduled_plan_at = NULL, updated_at = now() WHERE tenant_id = $1",
        tenant_id,
        plan_code,
    )


async def claim_scheduled_plans_due(
    conn: asyncpg.Connection, *, now: datetime, tenant_ids: Sequence[int] | None, limit: int
) -> list[asyncpg.Record]:
    """Subscriptions whose scheduled plan change has come (``scheduled_plan_at <= now``)."""
    return await conn.fetch(
        _DUE_SELECT
        + " AND s.scheduled_plan_code IS NOT NULL AND s.scheduled_plan_at <= $3"
        + _DUE_LOCK,
        _ids(tenant_ids),
        limit,
        now,
    )


async def record_autopay_consent(
    conn: Executor, tenant_id: int, *, consent: dict[str, Any]
) -> None:
    """Remember the terms the owner agreed to for automatic charges."""
    await conn.execute(
        "UPDATE control.subscriptions SET autopay_consent = $2, updated_at = now()"
        " WHERE tenant_id = $1",
        tenant_id,
        consent,
    )
