"""The subscription lifecycle, run periodically: reminders, automatic renewal, expiry, grace,
suspension, the deletion warning and deletion after retention, and releasing abandoned purchases.

Time is passed in (``run_once(now)``), never read inside the steps, so tests move a clock instead of
sleeping. Each step claims due rows with ``FOR UPDATE SKIP LOCKED`` in its own short transaction and
writes its state change, its job and the owner's event in that same transaction; runners on several
hosts share the work, and a crash in the middle leaves each subscription either before or after a
step, never half-way. Each subscription's share of a step runs in a savepoint: one that fails for a
reason of its own (not the database's or the network's) is undone, set aside with its error
(``lifecycle_failed_at``; skipped by later runs until ``botfleet billing retry``) and logged once,
and the step goes on with the others.

::

    active --(scheduled_plan_at)--> the plan scheduled by a downgrade takes over
    active --(end - 3d, end - 1d)--> reminders         active --(end - lead)--> auto-renewal charge
    active --(end)--> grace --(end + grace)--> expired/suspended (desired stopped, suspend job)
    expired --(suspended + retention - warning)--> deletion warning
    expired --(suspended + retention, warned >= warning ago)--> cancelled (desired deleted,
                                                                  deprovision job with export)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import asyncpg

from fleet import jobs
from fleet.billing.checkout import CheckoutService
from fleet.billing.config import BillingConfig, Clock, utc_now
from fleet.billing.yookassa import money
from fleet.errors import BotfleetError
from fleet.repositories import audit
from fleet.repositories import events as event_repo
from fleet.repositories import payment_writes as payment_repo
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import TenantRepository
from schemas.events import (
    SubscriptionExpired,
    SubscriptionReminder,
    TenantDeleted,
    TenantDeletionWarning,
    TenantSuspended,
)

log = logging.getLogger(__name__)

ACTOR = "billing.lifecycle"
# Errors that say nothing about the subscription (the database or the network is unwell): the run
# stops and the next one tries again. Anything else a step raises on a row is that row's problem.
TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TransactionRollbackError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    OSError,
    TimeoutError,
)
_Step = Callable[[asyncpg.Connection, datetime, Sequence[int] | None], Awaitable[int]]
BATCH = 100


@dataclass
class LifecycleReport:
    """How many subscriptions each step handled in one run."""

    plans_changed: int = 0
    reminded: int = 0
    charged: int = 0
    expired: int = 0
    suspended: int = 0
    warned: int = 0
    deleted: int = 0
    released: int = 0
    errors: int = 0
    set_aside: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def reminder_marks(days: Sequence[int], *, left: timedelta) -> list[int]:
    """The reminder offsets (in days) already reached when ``left`` remains, largest first."""
    return [d for d in sorted(days, reverse=True) if left <= timedelta(days=d)]


class SubscriptionLifecycle:
    """Moves subscriptions through their lifecycle; see the module docstring."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        checkout: CheckoutService,
        config: BillingConfig,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._checkout = checkout
        self._config = config
        self._clock = clock
        self._set_aside = 0

    async def run_once(
        self, now: datetime | None = None, *, tenant_ids: Sequence[int] | None = None
    ) -> LifecycleReport:
        """One pass of every step at ``now`` (default: the clock), optionally for some tenants."""
        now = now or self._clock()
        report = LifecycleReport()
        self._set_aside = 0
        report.plans_changed = await self._drain(self._apply_scheduled_plans, now, tenant_ids)
        report.charged, report.errors = await self._auto_renew(now, tenant_ids)
        report.reminded = await self._drain(self._remind, now, tenant_ids)
        report.expired = await self._drain(self._expire, now, tenant_ids)
        report.suspended = await self._drain(self._suspend, now, tenant_ids)
        report.warned = await self._drain(self._warn_deletion, now, tenant_ids)
        report.deleted = await self._drain(self._delete, now, tenant_ids)
        report.released = await self._drain(self._release_abandoned, now, tenant_ids)
        report.set_aside = self._set_aside
        if any(report.as_dict().values()):
            log.info("billing lifecycle run", extra=report.as_dict())
        return report

    async def run_forever(self, *, interval: float, stop: asyncio.Event) -> None:
        """Run :meth:`run_once` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_once()
            except (BotfleetError, asyncpg.PostgresError, OSError):
                log.exception("billing lifecycle run failed; retrying next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def _drain(self, step: _Step, now: datetime, tenant_ids: Sequence[int] | None) -> int:
        """Repeat a step's batches until it finds nothing more to do."""
        total = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                done = await step(conn, now, tenant_ids)
            total += done
            if done < BATCH:
                return total

    @contextlib.asynccontextmanager
    async def _isolated(
        self, conn: asyncpg.Connection, row: asyncpg.Record, *, step: str
    ) -> AsyncIterator[None]:
        """One subscription's share of a step, in a savepoint: if it fails for a reason of its own
        (not the database's or the network's), its writes are undone, it is set aside with the
        error for an operator, and the step goes on with the next row."""
        try:
            async with conn.transaction():
                yield
        except TRANSIENT:
            raise
        except Exception as exc:
            await self._set_aside_row(conn, row, step=step, exc=exc)

    async def _set_aside_row(
        self,
        db: asyncpg.Connection | asyncpg.Pool,
        row: asyncpg.Record,
        *,
        step: str,
        exc: Exception,
    ) -> None:
        error = f"{step}: {type(exc).__name__}: {exc}"
        await subscription_repo.set_aside(db, row["id"], error=error)
        self._set_aside += 1
        log.error(
            "subscription set aside by the lifecycle",
            exc_info=exc,
            extra={"subscription_id": row["id"], "tenant": row["slug"], "step": step},
        )

    # -- steps: each takes a connection in a transaction and returns how many rows it handled --

    async def _remind(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        days = self._config.reminder_days
        if not days:
            return 0
        rows = await subscription_repo.claim_reminders_due(
            conn, now=now, reminder_days=days, tenant_ids=tenant_ids, limit=BATCH
        )
        plans = PlanRepository(conn)
        for row in rows:
            async with self._isolated(conn, row, step="remind"):
                reached = reminder_marks(days, left=row["current_period_end"] - now)
                marks = [f"{d}d" for d in reached]
                end = row["current_period_end"]
                # A refused charge is not tried again this period: the owner pays by hand.
                auto = bool(
                    row["auto_renew"] and row["payment_method_id_enc"]
                ) and not await payment_repo.auto_renewal_failed(
                    conn, row["tenant_id"], renews_period_end=end
                )
                # The next period's terms, as the owner agreed to them: its plan (a scheduled
                # change included), price, length, and when the saved card is charged.
                plan = await plans.get(row["scheduled_plan_code"] or row["plan_code"])
                assert plan is not None  # subscriptions.plan_code references plans
                # Only the nearest reminder is sent; earlier ones missed (a runner was down) are
                # marked so the owner does not get "3 days left" after "1 day left".
                await event_repo.insert_event(
                    conn,
                    tenant_id=row["tenant_id"],
                    event=SubscriptionReminder(
                        days_left=reached[-1],
                        paid_until=end,
                        auto_renew=auto,
                        amount=money(plan["price"]),
                        currency=plan["currency"].strip(),
                        charge_at=max(end - self._config.autorenew_lead, now) if auto else None,
                        period_days=plan["period_days"],
                        plan_name=plan["name"],
                        card=row["payment_method_title"] if auto else None,
                    ),
                )
                await subscription_repo.add_marks(conn, row["id"], marks)
        return len(rows)

    async def _apply_scheduled_plans(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        """A downgrade scheduled for the end of the paid time: that time has come."""
        rows = await subscription_repo.claim_scheduled_plans_due(
            conn, now=now, tenant_ids=tenant_ids, limit=BATCH
        )
        for row in rows:
            async with self._isolated(conn, row, step="apply_scheduled_plan"):
                code = row["scheduled_plan_code"]
                await subscription_repo.switch_plan(conn, row["tenant_id"], plan_code=code)
                await TenantRepository(conn).update(row["tenant_id"], plan_code=code)
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="subscription.plan_changed",
                    target=row["slug"],
                    details={
                        "from_plan": row["plan_code"],
                        "to_plan": code,
                        "scheduled_at": row["scheduled_plan_at"].isoformat(),
                    },
                )
        return len(rows)

    async def _expire(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        rows = await subscription_repo.claim_expired(
            conn, now=now, tenant_ids=tenant_ids, limit=BATCH
        )
        for row in rows:
            async with self._isolated(conn, row, step="expire"):
                await subscription_repo.set_status(conn, row["id"], status="grace")
                await event_repo.insert_event(
                    conn,
                    tenant_id=row["tenant_id"],
                    event=SubscriptionExpired(
                        paid_until=row["current_period_end"],
                        suspend_at=row["current_period_end"] + self._config.grace,
                    ),
                )
        return len(rows)

    async def _suspend(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        rows = await subscription_repo.claim_grace_over(
            conn, ended_before=now - self._config.grace, tenant_ids=tenant_ids, limit=BATCH
        )
        for row in rows:
            async with self._isolated(conn, row, step="suspend"):
                await subscription_repo.set_status(
                    conn, row["id"], status="expired", suspended_at=now
                )
                await TenantRepository(conn).update(row["tenant_id"], desired_state="stopped")
                await jobs.enqueue(conn, kind="suspend", tenant_id=row["tenant_id"])
                await event_repo.insert_event(
                    conn,
                    tenant_id=row["tenant_id"],
                    event=TenantSuspended(reason="unpaid", delete_at=now + self._config.retention),
                )
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="tenant.suspend",
                    target=row["slug"],
                    details={
                        "reason": "unpaid",
                        "paid_until": row["current_period_end"].isoformat(),
                    },
                )
        return len(rows)

    async def _warn_deletion(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        lead = max(self._config.retention - self._config.deletion_warning, timedelta(0))
        rows = await subscription_repo.claim_deletion_warnings_due(
            conn, suspended_before=now - lead, tenant_ids=tenant_ids, limit=BATCH
        )
        for row in rows:
            async with self._isolated(conn, row, step="warn_deletion"):
                delete_at = max(
                    row["suspended_at"] + self._config.retention,
                    now + self._config.deletion_warning,
                )
                await subscription_repo.mark_deletion_warned(conn, row["id"], now=now)
                await event_repo.insert_event(
                    conn,
                    tenant_id=row["tenant_id"],
                    event=TenantDeletionWarning(delete_at=delete_at),
                )
        return len(rows)

    async def _delete(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        rows = await subscription_repo.claim_deletions_due(
            conn,
            suspended_before=now - self._config.retention,
            warned_before=now - self._config.deletion_warning,
            tenant_ids=tenant_ids,
            limit=BATCH,
        )
        for row in rows:
            async with self._isolated(conn, row, step="delete"):
                await subscription_repo.set_status(conn, row["id"], status="cancelled")
                await TenantRepository(conn).update(row["tenant_id"], desired_state="deleted")
                await jobs.enqueue(
                    conn,
                    kind="deprovision",
                    tenant_id=row["tenant_id"],
                    payload={"export": True, "reason": "retention"},
                )
                await event_repo.insert_event(
                    conn, tenant_id=row["tenant_id"], event=TenantDeleted(export=True)
                )
                await audit.record(
                    conn,
                    actor=ACTOR,
                    action="tenant.delete",
                    target=row["slug"],
                    details={
                        "reason": "retention",
                        "suspended_at": row["suspended_at"].isoformat(),
                    },
                )
        return len(rows)

    async def _release_abandoned(
        self, conn: asyncpg.Connection, now: datetime, tenant_ids: Sequence[int] | None
    ) -> int:
        rows = await subscription_repo.claim_abandoned_purchases(
            conn,
            created_before=now - self._config.abandoned_after,
            tenant_ids=tenant_ids,
            limit=BATCH,
        )
        for row in rows:
            # Never provisioned: no data plane exists, so marking it deleted frees slug and token.
            await payment_repo.cancel_open_payments(conn, row["id"], reason="abandoned")
            await TenantRepository(conn).mark_deleted(row["id"])
            await audit.record(
                conn, actor=ACTOR, action="tenant.release_abandoned", target=row["slug"]
            )
        return len(rows)

    async def _auto_renew(self, now: datetime, tenant_ids: Sequence[int] | None) -> tuple[int, int]:
        """Charge saved methods of subscriptions ending within the lead time. The provider calls
        happen outside any transaction; each charge is guarded by its own row and key."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await subscription_repo.claim_renewals_due(
                conn,
                now=now,
                horizon=now + self._config.autorenew_lead,
                tenant_ids=tenant_ids,
                limit=BATCH,
            )
        charged = errors = 0
        for row in rows:
            try:
                result = await self._checkout.charge_saved_method(tenant_id=row["tenant_id"])
            except BotfleetError as exc:
                errors += 1
                log.warning(
                    "auto-renewal charge failed; retried next run",
                    extra={"tenant": row["slug"], "error": str(exc)},
                )
                continue
            except TRANSIENT:
                raise
            except Exception as exc:  # a bug or a reply no retry changes: not every run again
                errors += 1
                await self._set_aside_row(self._pool, row, step="auto_renew", exc=exc)
                continue
            if result is not None:
                charged += 1
        return charged, errors
