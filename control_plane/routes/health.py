"""``/healthz`` (the process is alive), ``/readyz`` (it can serve) and ``/metrics`` (Prometheus).

A sandbox installation (stand-ins for Telegram and YooKassa: fake payments) says so in every
``/readyz`` answer: ``"sandbox": true`` and a ``sandbox`` line among the checks."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from control_plane.deps import AppMetrics, Health, Pool
from control_plane.metrics import CONTENT_TYPE
from schemas.api import CheckResult, Readiness
from schemas.api import Health as HealthBody

SANDBOX_NOTICE = (
    "SANDBOX: Telegram and/or YooKassa are stand-ins; payments are fake. Not a production "
    "installation."
)


class ReadinessWithMode(Readiness):
    """Readiness, plus whether this is a sandbox installation (fake payments)."""

    sandbox: bool = False


router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> HealthBody:
    return HealthBody()


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis answer, migrations are current, background loops healthy",
    responses={503: {"model": ReadinessWithMode, "description": "Not ready; `checks` says why"}},
)
async def readyz(health: Health, response: Response, request: Request) -> ReadinessWithMode:
    readiness = await health.readiness()
    if readiness.status != "ready":
        response.status_code = 503
    sandbox = bool(getattr(request.app.state, "sandbox", False))
    checks = dict(readiness.checks)
    if sandbox:
        checks["sandbox"] = CheckResult(ok=True, detail=SANDBOX_NOTICE)
    return ReadinessWithMode(status=readiness.status, checks=checks, sandbox=sandbox)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: AppMetrics, pool: Pool, request: Request) -> Response:
    state = request.app.state
    await metrics.refresh(
        pool,
        redis=getattr(state, "redis", None),
        role_prefix=getattr(state, "role_prefix", "tenant_"),
    )
    return Response(metrics.render(), media_type=CONTENT_TYPE)
