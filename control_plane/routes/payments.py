"""``/api/v1/payments``: payments as admins see them (billing adds creation in its own router)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query

from control_plane import render
from control_plane.deps import Payments, ReaderKey
from control_plane.endpoints import Cursor, Limit, resource_router
from control_plane.pagination import decode_cursor, split_page
from control_plane.problems import problem_responses
from fleet.identifiers import SLUG_PATTERN
from schemas.api import Page, PaymentPublic, PaymentStatus
from schemas.plans import PLAN_CODE_PATTERN

router = resource_router("/payments", tag="payments")


@router.get("", summary="List payments (cursor pages, newest first)")
async def list_payments(
    _key: ReaderKey,
    payments: Payments,
    tenant: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="Tenant slug")] = None,
    status: Annotated[PaymentStatus | None, Query()] = None,
    plan: Annotated[str | None, Query(pattern=PLAN_CODE_PATTERN)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[PaymentPublic]:
    before = decode_cursor(cursor, "payments", datetime.fromisoformat, UUID)
    rows = await payments.list(
        tenant=tenant,
        status=status,
        plan_code=plan,
        before=(before[0], before[1]) if before else None,
        limit=limit + 1,
    )
    page, next_cursor = split_page(
        rows,
        limit=limit,
        listing="payments",
        key=lambda r: (r["created_at"].isoformat(), str(r["id"])),
    )
    return Page(items=[render.payment(row) for row in page], next_cursor=next_cursor)


@router.get("/{payment_id}", summary="Show a payment", responses=problem_responses(404))
async def get_payment(_key: ReaderKey, payment_id: UUID, payments: Payments) -> PaymentPublic:
    return render.payment(await payments.get(payment_id))
