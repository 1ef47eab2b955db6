"""Deployments: what the deploy worker last recorded about each tenant's bot, and its logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from control_plane import render
from control_plane.deps import Deployments, ReaderKey
from control_plane.endpoints import Cursor, Limit, Slug, resource_router
from control_plane.pagination import decode_cursor, split_page
from control_plane.problems import problem_responses
from schemas.api import DeploymentLogs, DeploymentPublic, DeploymentStatus, Page

router = resource_router("", tag="deployments")


@router.get("/deployments", summary="List deployments (cursor pages, in tenant order)")
async def list_deployments(
    _key: ReaderKey,
    deployments: Deployments,
    status: Annotated[
        DeploymentStatus | None, Query(description="Only deployments in this status")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DeploymentPublic]:
    after = decode_cursor(cursor, "deployments", int)
    rows = await deployments.list(
        status=status, after_tenant_id=after[0] if after else 0, limit=limit + 1
    )
    page, next_cursor = split_page(
        rows, limit=limit, listing="deployments", key=lambda r: (r["tenant_id"],)
    )
    return Page(items=[render.deployment(row) for row in page], next_cursor=next_cursor)


@router.get(
    "/tenants/{slug}/deployment",
    summary="The deployment of a tenant's bot",
    responses=problem_responses(404),
)
async def get_deployment(_key: ReaderKey, slug: Slug, deployments: Deployments) -> DeploymentPublic:
    return render.deployment(await deployments.get(slug))


@router.get(
    "/tenants/{slug}/deployment/logs",
    summary="The last lines the tenant's bot wrote (tokens and phone numbers masked)",
    responses=problem_responses(404),
)
async def tail_logs(
    _key: ReaderKey,
    slug: Slug,
    deployments: Deployments,
    lines: Annotated[int, Query(ge=1, le=2000, description="How many lines")] = 200,
) -> DeploymentLogs:
    source, tail = await deployments.tail(slug, lines=lines)
    return DeploymentLogs(tenant=slug, source=source, lines=tail)
