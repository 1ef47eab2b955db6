"""``/api/v1/tenants/{slug}/plan-change``: quote (GET) or make (POST) a plan change by the same rule
owners follow in the sales bot (:mod:`fleet.billing.plan_changes`). An upgrade answers with the
YooKassa checkout the owner pays; the change happens when the payment arrives. Admin scope; POST
honours ``Idempotency-Key`` and is idempotent by itself (a repeat finds the change already made or
the same open checkout)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from control_plane.deps import AdminKey, RequestId, Tenants
from control_plane.endpoints import Slug, resource_router
from control_plane.idempotency import Idempotent
from control_plane.problems import ApiProblem, problem_responses
from control_plane.routes.billing import BillingDep
from fleet.billing.errors import PaymentProviderError
from fleet.billing.plan_changes import PlanChange
from schemas.api import PlanChangePublic, PlanChangeRequest
from schemas.plans import PLAN_CODE_PATTERN

# Tagged "billing": its answers depend on the YooKassa settings (like the webhook).
router = resource_router("/tenants", tag="billing")


def _public(change: PlanChange) -> PlanChangePublic:
    checkout = change.checkout
    return PlanChangePublic(
        kind=change.kind.value,
        tenant=change.slug,
        from_plan=change.from_plan,
        to_plan=change.to_plan,
        currency=change.currency,
        price=change.price,
        period_days=change.period_days,
        credit=change.credit,
        amount_due=change.amount_due,
        effective_at=change.effective_at,
        paid_until=change.paid_until,
        payment_id=checkout.payment_id if checkout else None,
        confirmation_url=checkout.confirmation_url if checkout else None,
    )


@router.get(
    "/{slug}/plan-change",
    summary="Quote a plan change (nothing is changed)",
    responses=problem_responses(404, 409),
)
async def quote_plan_change(
    _key: AdminKey,
    slug: Slug,
    tenants: Tenants,
    billing: BillingDep,
    plan_code: Annotated[str, Query(pattern=PLAN_CODE_PATTERN, description="The plan to move to")],
) -> PlanChangePublic:
    tenant = await tenants.get(slug)
    return _public(await billing.plan_changes.quote(tenant_id=tenant.id, plan_code=plan_code))


@router.post(
    "/{slug}/plan-change",
    summary="Change a tenant's plan: an upgrade at once once paid, a downgrade at period end",
    responses=problem_responses(404, 409, 503),
)
async def change_plan(
    key: AdminKey,
    _idempotent: Idempotent,
    slug: Slug,
    body: PlanChangeRequest,
    tenants: Tenants,
    billing: BillingDep,
    request_id: RequestId,
) -> PlanChangePublic:
    tenant = await tenants.get(slug)
    try:
        change = await billing.plan_changes.change(
            tenant_id=tenant.id, plan_code=body.plan_code, actor=key.actor, request_id=request_id
        )
    except PaymentProviderError as exc:
        raise ApiProblem(503, "YooKassa could not create the upgrade payment; retry later") from exc
    return _public(change)
