"""``/healthz`` (the process is alive), ``/readyz`` (it can serve) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from control_plane.deps import AppMetrics, Health, Pool
from control_plane.metrics import CONTENT_TYPE
from schemas.api import Health as HealthBody
from schemas.api import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> HealthBody:
    return HealthBody()


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis answer, migrations are current, background loops healthy",
    responses={503: {"model": Readiness, "description": "Not ready; `checks` says why"}},
)
async def readyz(health: Health, response: Response) -> Readiness:
    readiness = await health.readiness()
    if readiness.status != "ready":
        response.status_code = 503
    return readiness


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: AppMetrics, pool: Pool, request: Request) -> Response:
    await metrics.refresh(pool, redis=getattr(request.app.state, "redis", None))
    return Response(metrics.render(), media_type=CONTENT_TYPE)
