"""Applying what YooKassa says about a payment: the webhook's rules.

Nothing in a notification body is trusted beyond "look at payment X": the payment is fetched from the
YooKassa API and checked against our own row (amount, currency, metadata, provider id). Its effect is
committed in ONE transaction under a row lock on our payment: the payment recorded (``applied_at`` set
once), the subscription started or extended (from the current end while it still runs), the tenant's
desired state set to running, a provision or resume job queued, and an event for the owner. A replay
finds ``applied_at`` set and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import asyncpg

from fleet import jobs
from fleet.billing.config import Clock, utc_now
from fleet.billing.errors import ProviderRejected
from fleet.billing.notifications import Notification
from fleet.billing.prorate import converted_period_end, unused_credit
from fleet.billing.yookassa import ProviderPayment, YooKassaClient, money
from fleet.repositories import audit
from fleet.repositories import events as event_repo
from fleet.repositories import payment_writes as payment_repo
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import Tenant, TenantRepository
from fleet.secrets import SecretBox
from schemas.events import (
    PaymentCanceled,
    PaymentRefundNeeded,
    PaymentSucceeded,
    SubscriptionRenewalFailed,
)

log = logging.getLogger(__name__)

ACTOR = "yookassa"


class PaymentOutcome(StrEnum):
    """What processing a provider payment did."""

    APPLIED = "applied"  # succeeded: subscription extended, tenant set to run
    CANCELED = "canceled"  # canceled: payment marked, owner told
    DUPLICATE = "duplicate"  # already processed: nothing changed
    IGNORED = "ignored"  # not ours, not final, or not matching our row: nothing changed


@dataclass(frozen=True)
class Result:
    """The outcome of one notification or provider answer, with a reason for logs and operators."""

    outcome: PaymentOutcome
    reason: str = ""
    payment_id: uuid.UUID | None = None


def _our_payment_id(remote: ProviderPayment) -> uuid.UUID | None:
    try:
        return uuid.UUID(remote.metadata.get("payment_id", ""))
    except ValueError:
        return None


def mismatch(row: asyncpg.Record, remote: ProviderPayment) -> str | None:
    """Why ``remote`` is not the payment ``row`` describes, or None when it is."""
    if row["provider_payment_id"] is not None and row["provider_payment_id"] != remote.id:
        return "the provider payment id differs from ours"
    if remote.amount != row["amount"]:
        return f"amount {money(remote.amount)} differs from ours {money(row['amount'])}"
    if remote.currency != row["currency"]:
        return f"currency {remote.currency} differs from ours {row['currency']}"
    if remote.metadata.get("tenant_id") != str(row["tenant_id"]):
        return "metadata.tenant_id differs from ours"
    return None


class PaymentService:
    """Processes YooKassa notifications and provider answers into subscriptions and jobs."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        provider: YooKassaClient,
        secrets: SecretBox,
        clock: Clock = utc_now,
        grace: timedelta = timedelta(days=3),
    ) -> None:
        self._pool = pool
        self._provider = provider
        self._secrets = secrets
        self._clock = clock
        self._grace = grace

    async def process_notification(
        self, notification: Notification, *, request_id: str | None = None
    ) -> Result:
        """Fetch the payment a notification names and apply what the API says.

        ``ProviderUnavailable`` propagates: the webhook then answers 5xx and YooKassa retries."""
        if not notification.event.startswith("payment."):
            return Result(
                PaymentOutcome.IGNORED, f"{notification.event} is not handled automatically"
            )
        known = await payment_repo.find_by_provider_id(self._pool, notification.object_id)
        if known is not None and (known["applied_at"] is not None or known["status"] == "canceled"):
            # Settled for good: nothing a notification says can change it, so YooKassa's
            # replays are answered without asking its API again.
            return Result(PaymentOutcome.DUPLICATE, f"already {known['status']}", known["id"])
        try:
            remote = await self._provider.get_payment(notification.object_id)
        except ProviderRejected as exc:
            if exc.status == 404:
                log.warning(
                    "notification for an unknown payment", extra={"event": notification.event}
                )
                return Result(PaymentOutcome.IGNORED, "YooKassa does not know this payment")
            raise
        return await self.apply(remote, request_id=request_id)

    async def apply(self, remote: ProviderPayment, *, request_id: str | None = None) -> Result:
        """Apply a payment as the YooKassa API reported it (idempotent)."""
        payment_id = _our_payment_id(remote)
        if payment_id is None:
            return Result(PaymentOutcome.IGNORED, "the payment carries no payment_id of ours")
        if remote.status == "succeeded" and remote.paid:
            return await self._apply_success(payment_id, remote, request_id=request_id)
        if remote.status == "canceled":
            return await self._apply_cancel(
                payment_id,
                reason=remote.cancellation_reason or "canceled",
                party=remote.cancellation_party,
                remote=remote,
                request_id=request_id,
            )
        return Result(PaymentOutcome.IGNORED, f"the payment is {remote.status}", payment_id)

    async def _reject(
        self, conn: asyncpg.Connection, row: asyncpg.Record, remote: ProviderPayment, reason: str
    ) -> Result:
        log.error(
            "payment does not match our record",
            extra={"payment_id": str(row["id"]), "reason": reason},
        )
        await audit.record(
            conn,
            actor=ACTOR,
            action="payment.mismatch",
            target=str(row["id"]),
            details={"reason": reason, "provider_payment_id": remote.id},
        )
        return Result(PaymentOutcome.IGNORED, reason, row["id"])

    async def _apply_success(
        self, payment_id: uuid.UUID, remote: ProviderPayment, *, request_id: str | None
    ) -> Result:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await payment_repo.lock_payment(conn, payment_id)
            if row is None:
                return Result(PaymentOutcome.IGNORED, "no payment of ours has this id")
            if reason := mismatch(row, remote):
                return await self._reject(conn, row, remote, reason)
            if row["applied_at"] is not None:
                return Result(PaymentOutcome.DUPLICATE, "already applied", payment_id)
            now = self._clock()
            details = await self._extend(conn, row, remote, now=now, request_id=request_id)
            await payment_repo.mark_applied(
                conn, payment_id, provider_payment_id=remote.id, now=now
            )
            await audit.record(
                conn,
                actor=ACTOR,
                action="payment.applied",
                target=details.get("slug"),
                details={"payment_id": str(payment_id), **details},
                request_id=request_id,
            )
        log.info(
            "payment applied",
            extra={"payment_id": str(payment_id), "tenant": details.get("slug"), **details},
        )
        return Result(PaymentOutcome.APPLIED, str(details.get("action", "")), payment_id)

    async def _extend(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        remote: ProviderPayment,
        *,
        now: datetime,
        request_id: str | None,
    ) -> dict[str, Any]:
        """Inside the payment's transaction: subscription, tenant state, job and owner event."""
        tenants = TenantRepository(conn)
        tenant = await tenants.lock(row["tenant_id"]) if row["tenant_id"] else None
        if tenant is None or tenant.deleted_at is not None or tenant.desired_state == "deleted":
            # The money arrived but the bot is gone (deleted meanwhile): an operator must refund.
            if tenant is not None:
                refund = PaymentRefundNeeded(
                    payment_id=str(row["id"]),
                    amount=money(row["amount"]),
                    currency=row["currency"],
                    purpose=row["purpose"],
                )
                await event_repo.insert_event(conn, tenant_id=tenant.id, event=refund)
            return {"action": "refund_needed", "slug": tenant.slug if tenant else None}
        plan = await PlanRepository(conn).get(row["plan_code"])
        assert plan is not None  # payments.plan_code references plans
        period = timedelta(days=plan["period_days"])
        subscription = await subscription_repo.lock_for_tenant(conn, tenant.id)
        if subscription is None:
            subscription = await subscription_repo.insert_subscription(
                conn,
                tenant_id=tenant.id,
                plan_code=plan["code"],
                period_start=now,
                period_end=now + period,
            )
        elif row["purpose"] == "upgrade":
            subscription = await self._upgrade(conn, subscription, plan, row, now=now)
        elif subscription["current_period_end"] > now:
            # Still paid for: the new period follows the current one, not today. A period paid on
            # another plan starts that plan when it starts (a scheduled change), not now.
            if plan["code"] != subscription["plan_code"]:
                await subscription_repo.schedule_plan(
                    conn,
                    tenant.id,
                    plan_code=plan["code"],
                    at=subscription["scheduled_plan_at"] or subscription["current_period_end"],
                )
            elif subscription["scheduled_plan_at"] == subscription["current_period_end"]:
                # The coming period was paid on the current plan: a change scheduled for it is off.
                await subscription_repo.schedule_plan(conn, tenant.id, plan_code=None, at=None)
            subscription = await subscription_repo.start_period(
                conn,
                subscription["id"],
                plan_code=subscription["plan_code"],
                period_start=subscription["current_period_start"],
                period_end=subscription["current_period_end"] + period,
            )
        else:
            subscription = await subscription_repo.start_period(
                conn,
                subscription["id"],
                plan_code=plan["code"],
                period_start=now,
                period_end=now + period,
            )
        method = remote.payment_method
        if method is not None and method.saved and row["save_payment_method"]:
            await subscription_repo.save_payment_method(
                conn,
                tenant.id,
                method_id_enc=self._secrets.encrypt(method.id),
                title=method.title,
            )
            if row["autopay_consent"] is not None:
                await subscription_repo.record_autopay_consent(
                    conn, tenant.id, consent=row["autopay_consent"]
                )
        action = await self._converge(
            conn, tenant, plan_code=subscription["plan_code"], request_id=request_id
        )
        paid = PaymentSucceeded(
            payment_id=str(row["id"]),
            amount=money(row["amount"]),
            currency=row["currency"],
            purpose=row["purpose"],
            action=action,
            paid_until=subscription["current_period_end"],
            plan_name=plan["name"],
        )
        await event_repo.insert_event(conn, tenant_id=tenant.id, event=paid)
        return {
            "action": action,
            "slug": tenant.slug,
            "paid_until": subscription["current_period_end"].isoformat(),
        }

    async def _upgrade(
        self,
        conn: asyncpg.Connection,
        subscription: asyncpg.Record,
        plan: asyncpg.Record,
        row: asyncpg.Record,
        *,
        now: datetime,
    ) -> asyncpg.Record:
        """An upgrade paid: the new plan starts now, and what was paid and not used yet (this
        payment plus the unused time at this moment) becomes time on it (see plan_changes)."""
        plans = PlanRepository(conn)
        current = await plans.get(subscription["plan_code"])
        scheduled_code = subscription["scheduled_plan_code"]
        scheduled = await plans.get(scheduled_code) if scheduled_code else None
        credit = unused_credit(subscription, current=current, scheduled=scheduled, now=now)
        end = converted_period_end(plan, now=now, value=Decimal(row["amount"]) + credit)
        await subscription_repo.schedule_plan(
            conn, subscription["tenant_id"], plan_code=None, at=None
        )
        return await subscription_repo.start_period(
            conn, subscription["id"], plan_code=plan["code"], period_start=now, period_end=end
        )

    async def _converge(
        self,
        conn: asyncpg.Connection,
        tenant: Tenant,
        *,
        plan_code: str,
        request_id: str | None,
    ) -> Literal["provision", "resume", "extend"]:
        """Set the tenant to run and queue what gets it there: provision, resume, or nothing."""
        tenants = TenantRepository(conn)
        if tenant.status == "new":
            await tenants.update(
                tenant.id, status="provisioning", desired_state="running", plan_code=plan_code
            )
            await jobs.enqueue(conn, kind="provision", tenant_id=tenant.id, request_id=request_id)
            return "provision"
        if tenant.desired_state != "running" or tenant.status == "suspended":
            await tenants.update(tenant.id, desired_state="running", plan_code=plan_code)
            await jobs.enqueue(conn, kind="resume", tenant_id=tenant.id, request_id=request_id)
            return "resume"
        if tenant.plan_code != plan_code:
            await tenants.update(tenant.id, plan_code=plan_code)
        return "extend"

    async def record_refused(
        self, payment_id: uuid.UUID, *, reason: str, request_id: str | None = None
    ) -> Result:
        """YooKassa refused to create a payment (e.g. a saved card it no longer accepts)."""
        return await self._apply_cancel(
            payment_id, reason=reason, party="yoo_money", remote=None, request_id=request_id
        )

    async def _apply_cancel(
        self,
        payment_id: uuid.UUID,
        *,
        reason: str,
        party: str | None,
        remote: ProviderPayment | None,
        request_id: str | None,
    ) -> Result:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await payment_repo.lock_payment(conn, payment_id)
            if row is None:
                return Result(PaymentOutcome.IGNORED, "no payment of ours has this id")
            if remote is not None and (mismatch_reason := mismatch(row, remote)):
                return await self._reject(conn, row, remote, mismatch_reason)
            if not await payment_repo.mark_canceled(
                conn,
                payment_id,
                reason=reason,
                provider_payment_id=remote.id if remote is not None else None,
            ):
                return Result(PaymentOutcome.DUPLICATE, f"already {row['status']}", payment_id)
            canceled: PaymentCanceled
            fields: dict[str, Any] = {
                "payment_id": str(payment_id),
                "reason": reason,
                "party": party,
                "purpose": row["purpose"],
                "amount": money(row["amount"]),
                "currency": row["currency"],
            }
            if row["purpose"] == "auto_renewal":
                # Tell the owner what is left to do: pay by hand before the period ends, or the
                # bot stops when the grace is over.
                paid_until = row["renews_period_end"]
                canceled = SubscriptionRenewalFailed(
                    **fields,
                    paid_until=paid_until,
                    suspend_at=paid_until + self._grace if paid_until else None,
                )
            else:
                canceled = PaymentCanceled(**fields)
            await event_repo.insert_event(conn, tenant_id=row["tenant_id"], event=canceled)
            await audit.record(
                conn,
                actor=ACTOR,
                action="payment.canceled",
                target=str(payment_id),
                details={"reason": reason, "party": party},
                request_id=request_id,
            )
        log.info("payment canceled", extra={"payment_id": str(payment_id), "reason": reason})
        return Result(PaymentOutcome.CANCELED, reason, payment_id)
