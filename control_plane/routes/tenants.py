"""``/api/v1/tenants``: list, show, create, change, suspend, resume, redeploy and delete tenants, and
their subscriptions. Creating and every transition answer 202 with the deploy job that carries it out.

Scopes: listing needs read; showing one tenant read or sales (the sales bot follows its purchases);
creating admin or sales; every change admin.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import Query, Response, status

from control_plane import render
from control_plane.deps import (
    AdminKey,
    ReaderKey,
    ReadOrSalesKey,
    RequestId,
    SalesKey,
    TenantReads,
    Tenants,
    Tokens,
)
from control_plane.endpoints import API_PREFIX, Cursor, Limit, Slug, resource_router
from control_plane.idempotency import Idempotent
from control_plane.pagination import decode_cursor, split_page
from control_plane.problems import problem_responses
from fleet.repositories.tenants import Tenant
from schemas.api import (
    Page,
    SubscriptionPublic,
    TenantAccepted,
    TenantPublic,
    TenantStatus,
    TenantUpdate,
)
from schemas.plans import PLAN_CODE_PATTERN
from schemas.tenants import TenantCreate

router = resource_router("/tenants", tag="tenants")


class _AcceptedRoute(TypedDict):
    """Keyword arguments shared by the routes answering 202 with a deploy job."""

    status_code: int
    responses: dict[int | str, dict[str, Any]]


_ACCEPTED: _AcceptedRoute = {
    "status_code": status.HTTP_202_ACCEPTED,
    "responses": problem_responses(404, 409),
}


def _accepted(tenant: Tenant, job: render.Row | None, tokens: render.TokenMasker) -> TenantAccepted:
    return TenantAccepted(
        tenant=render.tenant(tenant, tokens=tokens),
        job=render.job(job) if job is not None else None,
    )


@router.get("", summary="List tenants (cursor pages, oldest first)")
async def list_tenants(
    _key: ReaderKey,
    tenants: Tenants,
    tokens: Tokens,
    status: Annotated[TenantStatus | None, Query(description="Only tenants in this status")] = None,
    plan: Annotated[
        str | None, Query(pattern=PLAN_CODE_PATTERN, description="Only tenants on this plan")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[TenantPublic]:
    after = decode_cursor(cursor, "tenants", int)
    rows = await tenants.list(
        status=status, plan_code=plan, after_id=after[0] if after else 0, limit=limit + 1
    )
    page, next_cursor = split_page(rows, limit=limit, listing="tenants", key=lambda r: (r.id,))
    return Page(items=[render.tenant(row, tokens=tokens) for row in page], next_cursor=next_cursor)


@router.post(
    "",
    summary="Create a tenant; the deploy worker provisions it",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(409),
)
async def create_tenant(
    key: SalesKey,
    _idempotent: Idempotent,
    body: TenantCreate,
    tenants: Tenants,
    tokens: Tokens,
    request_id: RequestId,
    response: Response,
) -> TenantAccepted:
    tenant, job = await tenants.create(body, actor=key.actor, request_id=request_id)
    response.headers["Location"] = f"{API_PREFIX}/tenants/{tenant.slug}"
    return _accepted(tenant, job, tokens)


@router.get("/{slug}", summary="Show a tenant", responses=problem_responses(404))
async def get_tenant(_key: ReadOrSalesKey, slug: Slug, tenants: TenantReads) -> TenantPublic:
    return await tenants.get(slug)


@router.patch(
    "/{slug}",
    summary="Change a tenant (a change its bot sees queues a redeploy)",
    responses=problem_responses(404, 409),
)
async def update_tenant(
    key: AdminKey,
    slug: Slug,
    body: TenantUpdate,
    tenants: Tenants,
    tokens: Tokens,
    request_id: RequestId,
) -> TenantAccepted:
    tenant, job = await tenants.update(slug, body, actor=key.actor, request_id=request_id)
    return _accepted(tenant, job, tokens)


@router.post("/{slug}/suspend", summary="Stop the tenant's bot, keeping its data", **_ACCEPTED)
async def suspend_tenant(
    key: AdminKey,
    _idempotent: Idempotent,
    slug: Slug,
    tenants: Tenants,
    tokens: Tokens,
    request_id: RequestId,
) -> TenantAccepted:
    tenant, job = await tenants.suspend(slug, actor=key.actor, request_id=request_id)
    return _accepted(tenant, job, tokens)


@router.post("/{slug}/resume", summary="Run the tenant's bot again", **_ACCEPTED)
async def resume_tenant(
    key: AdminKey,
    _idempotent: Idempotent,
    slug: Slug,
    tenants: Tenants,
    tokens: Tokens,
    request_id: RequestId,
) -> TenantAccepted:
    tenant, job = await tenants.resume(slug, actor=key.actor, request_id=request_id)
    return _accepted(tenant, job, tokens)


@router.post("/{slug}/redeploy", summary="Recreate the tenant's bot container", **_ACCEPTED)
async def redeploy_tenant(
    key: AdminKey,
    _idempotent: Idempotent,
    slug: Slug,
    tenants: Tenants,
    tokens: Tokens,
    request_id: RequestId,
) -> TenantAccepted:
    tenant, job = await tenants.redeploy(slug, actor=key.actor, request_id=request_id)
    return _accepted(tenant, job, tokens)


@router.delete("/{slug}", summary="Delete the tenant: its bot, then its data", **_ACCEPTED)
async def delete_tenant(
    key: AdminKey, slug: Slug, tenants: Tenants, tokens: Tokens, request_id: RequestId
) -> TenantAccepted:
    tenant, job = await tenants.delete(slug, actor=key.actor, request_id=request_id)
    return _accepted(tenant, job, tokens)


@router.get(
    "/{slug}/subscriptions",
    summary="The tenant's subscription (none before the first payment)",
    responses=problem_responses(404),
)
async def list_subscriptions(
    _key: ReaderKey, slug: Slug, tenants: Tenants
) -> Page[SubscriptionPublic]:
    return Page(items=[render.subscription(row) for row in await tenants.subscriptions(slug)])
