"""``/api/v1/plans``: what buyers can purchase. Read by admin, read and sales keys; changed by admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Response, status

from control_plane import render
from control_plane.deps import AdminKey, Plans, ReadOrSalesKey, RequestId
from control_plane.endpoints import API_PREFIX, resource_router
from control_plane.idempotency import Idempotent
from control_plane.problems import problem_responses
from schemas.api import Page
from schemas.plans import PLAN_CODE_PATTERN, PlanCreate, PlanPublic, PlanUpdate

router = resource_router("/plans", tag="plans")

Code = Annotated[str, Path(pattern=PLAN_CODE_PATTERN, examples=["basic"])]


@router.get("", summary="List plans, cheapest first")
async def list_plans(
    _key: ReadOrSalesKey,
    plans: Plans,
    active: Annotated[bool | None, Query(description="Only active (or inactive) plans")] = None,
) -> Page[PlanPublic]:
    return Page(items=[render.plan(row) for row in await plans.list(active=active)])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a plan",
    responses=problem_responses(409),
)
async def create_plan(
    key: AdminKey,
    _idempotent: Idempotent,
    body: PlanCreate,
    plans: Plans,
    request_id: RequestId,
    response: Response,
) -> PlanPublic:
    plan = await plans.create(body, actor=key.actor, request_id=request_id)
    response.headers["Location"] = f"{API_PREFIX}/plans/{plan['code']}"
    return render.plan(plan)


@router.get("/{code}", summary="Show a plan", responses=problem_responses(404))
async def get_plan(_key: ReadOrSalesKey, code: Code, plans: Plans) -> PlanPublic:
    return render.plan(await plans.get(code))


@router.patch("/{code}", summary="Change a plan", responses=problem_responses(404))
async def update_plan(
    key: AdminKey, code: Code, body: PlanUpdate, plans: Plans, request_id: RequestId
) -> PlanPublic:
    return render.plan(await plans.update(code, body, actor=key.actor, request_id=request_id))


@router.delete(
    "/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a plan nobody used (otherwise deactivate it)",
    responses=problem_responses(404, 409),
)
async def delete_plan(key: AdminKey, code: Code, plans: Plans, request_id: RequestId) -> None:
    await plans.delete(code, actor=key.actor, request_id=request_id)
