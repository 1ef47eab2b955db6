"""``/api/v1/payments/{id}/refunds``: refund a payment (admin), list its refunds (read).

The ``Idempotency-Key`` header is required here: it is the refund's own key (stored with the refund),
so a retried request, even one whose first answer was lost to a crash, finds the same refund instead of
making a second. The rules (how much may be refunded, what a full refund does to the subscription) are
in :mod:`fleet.billing.refunds`.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import Response, status

from control_plane.deps import AdminKey, Payments, Pool, ReaderKey, RequestId
from control_plane.endpoints import resource_router
from control_plane.idempotency import HEADER, Idempotent
from control_plane.problems import ApiProblem, problem_responses
from control_plane.routes.billing import BillingDep
from fleet.billing.errors import ProviderRejected, ProviderUnavailable
from fleet.billing.refunds import RefundView, list_refunds_of
from schemas.api import RefundCreate, RefundPublic

router = resource_router("/payments", tag="payments")


def _public(view: RefundView) -> RefundPublic:
    return RefundPublic(
        id=view.id,
        payment_id=view.payment_id,
        amount=view.amount,
        currency=view.currency,
        status=view.status,
        reason=view.reason,
        key=view.request_key,
        provider_refund_id=view.provider_refund_id,
        effect=view.effect,
        last_error=view.last_error,
        created_at=view.created_at,
    )


@router.post(
    "/{payment_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund a payment, fully or partly (Idempotency-Key required)",
    responses=problem_responses(404, 409, 422, 503),
    tags=["billing"],  # needs YooKassa (503 without BOTFLEET_YOOKASSA_* settings)
)
async def create_refund(
    key: AdminKey,
    claim: Idempotent,
    payment_id: UUID,
    body: RefundCreate,
    billing: BillingDep,
    response: Response,
    request_id: RequestId,
) -> RefundPublic:
    if claim is None:
        raise ApiProblem(
            422,
            f"send an {HEADER} header (e.g. a UUID): it names this refund, so a retried request "
            "never refunds twice",
            errors=[(HEADER, "required for refunds")],
        )
    try:
        made = await billing.refunds.refund(
            payment_id,
            key=f"api:{claim.key}",
            actor=key.actor,
            amount=body.amount,
            reason=body.reason,
            request_id=request_id,
        )
    except ProviderRejected as exc:
        raise ApiProblem(
            409,
            f"YooKassa refused the refund ({exc.code}: {exc.description}"
            f"{f'; parameter {exc.parameter}' if exc.parameter else ''}); nothing was refunded",
        ) from None
    except ProviderUnavailable:
        raise ApiProblem(
            503,
            "YooKassa did not answer; retry with the same Idempotency-Key to finish this refund",
            headers={"Retry-After": "5"},
        ) from None
    if made.replayed:
        response.status_code = status.HTTP_200_OK
    return _public(made)


@router.get(
    "/{payment_id}/refunds",
    summary="List a payment's refunds (oldest first)",
    responses=problem_responses(404),
)
async def list_refunds(
    _key: ReaderKey, payment_id: UUID, payments: Payments, pool: Pool
) -> list[RefundPublic]:
    await payments.get(payment_id)  # 404 for an unknown payment
    return [_public(view) for view in await list_refunds_of(pool, payment_id)]
