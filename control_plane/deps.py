"""``Annotated`` dependency aliases for routes: who is calling (by scope), the request id, and the
services and shared clients the lifespan put on ``app.state``.

Every provider is ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, a thread hop
per dependency per request.

Scopes: ``AdminKey`` (admin only), ``ReaderKey`` (read or admin), ``SalesKey`` (sales or admin),
``ReadOrSalesKey`` (read, sales or admin). Every one answers 401/403/429 problems.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from control_plane.auth import require_scopes
from control_plane.metrics import Metrics
from control_plane.render import TenantReader, TokenMasker
from control_plane.services import Services
from control_plane.services.audit import AuditService
from control_plane.services.deployments import DeploymentService
from control_plane.services.health import HealthService
from control_plane.services.jobs import JobAdminService
from control_plane.services.payments import PaymentReadService
from control_plane.services.tenants import TenantAdminService
from fleet.apikeys import ApiKey
from fleet.plans import PlanService
from fleet.secrets import SecretBox

AdminKey = Annotated[ApiKey, Depends(require_scopes())]
ReaderKey = Annotated[ApiKey, Depends(require_scopes("read"))]
SalesKey = Annotated[ApiKey, Depends(require_scopes("sales"))]
ReadOrSalesKey = Annotated[ApiKey, Depends(require_scopes("read", "sales"))]


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_secrets(request: Request) -> SecretBox:
    return request.app.state.secrets


async def get_tokens(request: Request) -> TokenMasker:
    return request.app.state.tokens


async def get_tenant_reader(request: Request) -> TenantReader:
    return request.app.state.tenant_reader


async def get_plans(request: Request) -> PlanService:
    return request.app.state.services.plans


async def get_tenants(request: Request) -> TenantAdminService:
    return request.app.state.services.tenants


async def get_jobs(request: Request) -> JobAdminService:
    return request.app.state.services.jobs


async def get_payments(request: Request) -> PaymentReadService:
    return request.app.state.services.payments


async def get_deployments(request: Request) -> DeploymentService:
    return request.app.state.services.deployments


async def get_audit(request: Request) -> AuditService:
    return request.app.state.services.audit


async def get_health(request: Request) -> HealthService:
    return request.app.state.services.health


RequestId = Annotated[str | None, Depends(get_request_id)]
Pool = Annotated[asyncpg.Pool, Depends(get_pool)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]
Secrets = Annotated[SecretBox, Depends(get_secrets)]
Tokens = Annotated[TokenMasker, Depends(get_tokens)]
TenantReads = Annotated[TenantReader, Depends(get_tenant_reader)]
Plans = Annotated[PlanService, Depends(get_plans)]
Tenants = Annotated[TenantAdminService, Depends(get_tenants)]
Jobs = Annotated[JobAdminService, Depends(get_jobs)]
Payments = Annotated[PaymentReadService, Depends(get_payments)]
Deployments = Annotated[DeploymentService, Depends(get_deployments)]
Audit = Annotated[AuditService, Depends(get_audit)]
Health = Annotated[HealthService, Depends(get_health)]
