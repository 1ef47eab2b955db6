"""``POST /webhooks/yookassa``: YooKassa's payment and refund notifications.

No API key (YooKassa has none to send) and no signature (YooKassa signs nothing): the sender's
address must be in YooKassa's networks (else 403), and the payment (or refund) is then fetched from the
YooKassa API by :class:`fleet.billing.payments.PaymentService` (or
:class:`fleet.billing.refunds.RefundService`), which trusts nothing in the body. The answer is
200 once the effect is committed (or known to be a no-op), so YooKassa stops retrying; 503 when the
API could not be asked, so YooKassa tries again later.

The services come from ``app.state.billing`` (:func:`fleet.billing.wiring.open_billing`, in the
application's lifespan).

Who the sender is was decided before the route runs: :class:`control_plane.middleware.EdgeGuard`
replaces the peer by the address a trusted proxy (``BOTFLEET_YOOKASSA_TRUSTED_PROXIES``) names, and
ignores ``X-Forwarded-For`` from anyone else; so the route checks the request's client alone. The
guard also caps the body (``BOTFLEET_WEBHOOK_MAX_BODY_BYTES``); the route counts it again so the cap
holds where the app is served without the guard.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from control_plane.middleware import DEFAULT_MAX_WEBHOOK_BODY
from control_plane.problems import ApiProblem
from fleet.billing.errors import NotificationRejected, PaymentProviderError
from fleet.billing.notifications import Notification
from fleet.billing.wiring import Billing

router = APIRouter(tags=["billing"])


def get_billing(request: Request) -> Billing:
    billing: Billing | None = getattr(request.app.state, "billing", None)
    if billing is None:
        raise ApiProblem(503, "billing is not configured (BOTFLEET_YOOKASSA_* settings)")
    return billing


BillingDep = Annotated[Billing, Depends(get_billing)]


class NotificationAck(BaseModel):
    """What processing did: applied, canceled, duplicate or ignored."""

    outcome: str


@router.post(
    "/webhooks/yookassa",
    response_model=NotificationAck,
    summary="YooKassa payment notification",
    responses={403: {"description": "The sender is not in YooKassa's networks"}},
)
async def yookassa_notification(request: Request, billing: BillingDep) -> NotificationAck:
    peer = request.client.host if request.client else None
    try:
        billing.senders.check(peer=peer)
        notification = Notification.parse(await _read_body(request))
    except NotificationRejected as exc:
        raise ApiProblem(exc.status, exc.message) from None
    try:
        request_id = getattr(request.state, "request_id", None)
        if notification.event.startswith("refund."):
            result = await billing.refunds.process_notification(notification, request_id=request_id)
        else:
            result = await billing.payments.process_notification(
                notification, request_id=request_id
            )
    except PaymentProviderError as exc:
        raise ApiProblem(503, "YooKassa could not be asked about the payment; retry later") from exc
    return NotificationAck(outcome=result.outcome.value)


async def _read_body(request: Request) -> bytes:
    """The body, read no further than the webhook's cap (NotificationRejected(413) beyond)."""
    limit: int = getattr(request.app.state, "webhook_max_body_bytes", DEFAULT_MAX_WEBHOOK_BODY)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise NotificationRejected(413, f"the notification is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
