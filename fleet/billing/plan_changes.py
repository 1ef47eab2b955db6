"""Plan changes: the rule, its quote, and carrying it out.

The rule (what owners are told in the README, "Billing rules for owners"):

- **Upgrade** (the new plan costs more per day than the current one): at once. The unused paid time
  is worth its price per day (the current plan's, and a scheduled plan's for time already paid on
  it); that **credit** is taken off the new plan's price and the owner pays the difference through
  the usual YooKassa checkout. When the payment arrives, the new plan starts a fresh period *now*,
  and everything paid and not yet used (the payment plus the credit at that moment) becomes time on
  the new plan: ``end = now + period * (paid + credit) / price``. With nothing changed since the quote
  that is one full period (minus the minutes the owner took to pay, used on the old plan); an auto-
  renewal or an expiry in between is accounted for exactly, never lost.
- If the credit covers the new price (less than :data:`MIN_CHARGE` would be left to pay), nothing is
  charged: the change happens at once and the credit becomes time on the new plan by the same formula.
- **Downgrade** (same or lower price per day): at the end of the paid time. It is *scheduled*; the
  lifecycle moves the subscription to it when that moment comes, and the auto-renewal charge and the
  owner's "Renew" already use its price. Choosing the current plan again cancels a scheduled change,
  unless the period on the new plan has already been paid for.
- **No paid time** (never paid, or the period has ended): the plan changes at once and the next
  payment is at its price.

Idempotent: every change runs under the tenant's row lock, a repeated request finds its own effect
(the same plan, the same schedule, or the same open upgrade checkout, resent with its key) and does
nothing new. Each change is written to the audit log.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import asyncpg

from fleet.billing.checkout import Checkout, CheckoutService
from fleet.billing.config import BillingConfig, Clock, utc_now
from fleet.billing.prorate import (
    KOPECK,
    MIN_CHARGE,
    converted_period_end,
    daily_price,
    unused_credit,
)
from fleet.billing.receipts import ReceiptBook
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories import payment_writes as payment_repo
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import Tenant, TenantRepository

log = logging.getLogger(__name__)


class ChangeKind(StrEnum):
    """How a plan change happens."""

    UPGRADE_PAID = "upgrade_paid"  # at once, once the difference is paid
    UPGRADE_CREDITED = "upgrade_credited"  # at once, the credit covers the new price
    AT_PERIOD_END = "at_period_end"  # scheduled for the end of the paid time
    KEEP_CURRENT = "keep_current"  # a scheduled change cancelled
    IMMEDIATE = "immediate"  # no paid time: the next payment is at the new price
    UNCHANGED = "unchanged"  # already so: nothing to do


@dataclass(frozen=True)
class PlanChange:
    """A quote (before) or an outcome (after) of a plan change."""

    kind: ChangeKind
    tenant_id: int
    slug: str
    from_plan: str | None
    to_plan: str
    to_plan_name: str
    to_plan_translations: dict[str, Any]
    currency: str
    price: Decimal
    period_days: int
    credit: Decimal = Decimal("0.00")
    amount_due: Decimal = Decimal("0.00")
    effective_at: datetime | None = None  # when the plan changes (None: when paid)
    paid_until: datetime | None = None  # the paid time after the change (known unless paid)
    checkout: Checkout | None = None  # the payment to make (UPGRADE_PAID after ``change``)


class PlanChangeService:
    """Quotes and carries out plan changes for owners (``owner_telegram_id``) and admins (None)."""

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

    async def quote(
        self, *, tenant_id: int, plan_code: str, owner_telegram_id: int | None = None
    ) -> PlanChange:
        """What changing to ``plan_code`` would do now (nothing is changed)."""
        async with self._pool.acquire() as conn:
            tenant = await self._tenant(conn, tenant_id, owner_telegram_id, lock=False)
            return await self._decide(conn, tenant, plan_code, now=self._clock())

    async def change(
        self,
        *,
        tenant_id: int,
        plan_code: str,
        owner_telegram_id: int | None = None,
        actor: str,
        request_id: str | None = None,
    ) -> PlanChange:
        """Change the plan by the rule; an upgrade to pay returns its ``checkout``."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            tenant = await self._tenant(conn, tenant_id, owner_telegram_id, lock=True)
            decision = await self._decide(conn, tenant, plan_code, now=now)
            payment, created = await self._carry_out(conn, tenant, decision, now=now)
            if created or (payment is None and decision.kind is not ChangeKind.UNCHANGED):
                await self._audit(
                    conn,
                    decision,
                    actor=actor,
                    request_id=request_id,
                    payment_id=str(payment["id"]) if payment is not None else None,
                )
        log.info(
            "plan change",
            extra={"tenant": tenant.slug, "kind": decision.kind.value, "plan": plan_code},
        )
        if payment is None:
            return decision
        plan = await self._checkout.active_plan(plan_code)
        checkout = await self._checkout.submit(payment, tenant=tenant, plan=plan)
        return dataclasses.replace(decision, amount_due=payment["amount"], checkout=checkout)

    # -- internals ---------------------------------------------------------------------------

    async def _tenant(
        self, conn: asyncpg.Connection, tenant_id: int, owner: int | None, *, lock: bool
    ) -> Tenant:
        repo = TenantRepository(conn)
        tenant = await (repo.lock(tenant_id) if lock else repo.get_by_id(tenant_id))
        if (
            tenant is None
            or tenant.deleted_at is not None
            or (owner is not None and owner not in tenant.owner_telegram_ids)
        ):
            raise NotFoundError("you have no such bot" if owner is not None else "no such tenant")
        if tenant.desired_state == "deleted":
            raise ConflictError("tenant", "this bot is being deleted; its plan cannot change")
        return tenant

    async def _decide(
        self, conn: asyncpg.Connection, tenant: Tenant, plan_code: str, *, now: datetime
    ) -> PlanChange:
        plans = PlanRepository(conn)
        target = await plans.get(plan_code)
        if target is None or not target["active"]:
            raise ValidationError("plan_code", f"there is no plan {plan_code!r} on sale")
        subscription = await subscription_repo.get_for_tenant(conn, tenant.id)
        current_code = subscription["plan_code"] if subscription else tenant.plan_code
        current = await plans.get(current_code) if current_code else None
        scheduled_code = subscription["scheduled_plan_code"] if subscription else None
        scheduled = await plans.get(scheduled_code) if scheduled_code else None
        base = {
            "tenant_id": tenant.id,
            "slug": tenant.slug,
            "from_plan": current_code,
            "to_plan": target["code"],
            "to_plan_name": target["name"],
            "to_plan_translations": target["translations"] or {},
            "currency": target["currency"].strip(),
            "price": target["price"],
            "period_days": target["period_days"],
        }
        paid_time = (
            subscription is not None
            and subscription["status"] in ("active", "grace")
            and subscription["current_period_end"] > now
        )
        if not paid_time or current is None:
            kind = ChangeKind.UNCHANGED if current_code == plan_code else ChangeKind.IMMEDIATE
            return PlanChange(kind=kind, effective_at=now, **base)
        assert subscription is not None
        end = subscription["current_period_end"]
        next_paid = scheduled is not None and subscription["scheduled_plan_at"] < end
        if plan_code == current_code:
            if scheduled is None:
                return PlanChange(kind=ChangeKind.UNCHANGED, paid_until=end, **base)
            if next_paid:
                raise ConflictError(
                    "plan_code",
                    f"the time from {subscription['scheduled_plan_at']:%Y-%m-%d} is already paid"
                    f" on plan {scheduled_code!r}; the plan can be changed again after that",
                )
            return PlanChange(kind=ChangeKind.KEEP_CURRENT, paid_until=end, **base)
        if daily_price(target) > daily_price(current):
            credit = unused_credit(subscription, current=current, scheduled=scheduled, now=now)
            due = Decimal(target["price"]) - credit
            if due < MIN_CHARGE:
                return PlanChange(
                    kind=ChangeKind.UPGRADE_CREDITED,
                    credit=credit,
                    effective_at=now,
                    paid_until=converted_period_end(target, now=now, value=credit),
                    **base,
                )
            return PlanChange(
                kind=ChangeKind.UPGRADE_PAID,
                credit=credit,
                amount_due=due.quantize(KOPECK),
                paid_until=now + timedelta(days=target["period_days"]),
                **base,
            )
        if scheduled_code == plan_code:
            return PlanChange(
                kind=ChangeKind.UNCHANGED,
                effective_at=subscription["scheduled_plan_at"],
                paid_until=end,
                **base,
            )
        if next_paid:
            raise ConflictError(
                "plan_code",
                f"the time from {subscription['scheduled_plan_at']:%Y-%m-%d} is already paid on"
                f" plan {scheduled_code!r}; the plan can be changed again after that",
            )
        return PlanChange(kind=ChangeKind.AT_PERIOD_END, effective_at=end, paid_until=end, **base)

    async def _carry_out(
        self, conn: asyncpg.Connection, tenant: Tenant, decision: PlanChange, *, now: datetime
    ) -> tuple[asyncpg.Record | None, bool]:
        """Write the decision; returns the upgrade payment to submit (if one is needed) and
        whether it was created now (else it is the open one of an earlier tap)."""
        kind = decision.kind
        tenants = TenantRepository(conn)
        if kind is ChangeKind.IMMEDIATE:
            await subscription_repo.switch_plan(conn, tenant.id, plan_code=decision.to_plan)
            await tenants.update(tenant.id, plan_code=decision.to_plan)
        elif kind is ChangeKind.KEEP_CURRENT:
            await subscription_repo.schedule_plan(conn, tenant.id, plan_code=None, at=None)
        elif kind is ChangeKind.AT_PERIOD_END:
            await subscription_repo.schedule_plan(
                conn, tenant.id, plan_code=decision.to_plan, at=decision.effective_at
            )
        elif kind is ChangeKind.UPGRADE_CREDITED:
            subscription = await subscription_repo.lock_for_tenant(conn, tenant.id)
            assert subscription is not None and decision.paid_until is not None
            await subscription_repo.start_period(
                conn,
                subscription["id"],
                plan_code=decision.to_plan,
                period_start=now,
                period_end=decision.paid_until,
            )
            await subscription_repo.schedule_plan(conn, tenant.id, plan_code=None, at=None)
            await tenants.update(tenant.id, plan_code=decision.to_plan)
        elif kind is ChangeKind.UPGRADE_PAID:
            reusable = await payment_repo.find_open_upgrade(
                conn,
                tenant_id=tenant.id,
                plan_code=decision.to_plan,
                created_after=now - self._config.checkout_reuse,
            )
            if reusable is not None:
                return reusable, False
            plan = await PlanRepository(conn).get(decision.to_plan)
            assert plan is not None
            payment = await payment_repo.insert_payment(
                conn,
                tenant_id=tenant.id,
                plan_code=decision.to_plan,
                amount=decision.amount_due,
                currency=decision.currency,
                description=self._checkout.description(plan, tenant) + " (upgrade)",
                purpose="upgrade",
                payer_telegram_id=None,
                save_payment_method=False,
                metadata={
                    # the owner's current receipt contact ("My bots"), else their last payment's
                    "receipt": (await ReceiptBook.contact_of(conn, tenant.id)).as_dict()
                    or await payment_repo.last_receipt_contact(conn, tenant.id),
                    "upgrade": {
                        "from_plan": decision.from_plan,
                        "credit": str(decision.credit),
                        "quoted_at": now.isoformat(),
                    },
                },
            )
            return payment, True
        return None, False

    @staticmethod
    async def _audit(
        conn: asyncpg.Connection,
        decision: PlanChange,
        *,
        actor: str,
        request_id: str | None,
        payment_id: str | None = None,
    ) -> None:
        details: dict[str, Any] = {
            "kind": decision.kind.value,
            "from_plan": decision.from_plan,
            "to_plan": decision.to_plan,
            "credit": str(decision.credit),
            "amount_due": str(decision.amount_due),
        }
        if decision.effective_at is not None:
            details["effective_at"] = decision.effective_at.isoformat()
        if payment_id is not None:
            details["payment_id"] = payment_id
        await audit.record(
            conn,
            actor=actor,
            action="subscription.plan_change",
            target=decision.slug,
            details=details,
            request_id=request_id,
        )
