"""The control plane's services: the rules behind the routes. Built once per app in its lifespan
(:func:`build_services`) and reached by routes through :mod:`control_plane.deps`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from control_plane.services.audit import AuditService
from control_plane.services.deployments import DeploymentService, LogSource
from control_plane.services.health import HealthService
from control_plane.services.jobs import JobAdminService
from control_plane.services.payments import PaymentReadService
from control_plane.services.tenants import TenantAdminService
from control_plane.tenant_cache import TenantCache
from fleet.apikeys import ApiKeyService
from fleet.migrations import Migration
from fleet.plans import PlanService
from fleet.secrets import SecretBox
from fleet.tenants import TenantService


@dataclass(frozen=True)
class Services:
    """Every service a route may call."""

    api_keys: ApiKeyService
    plans: PlanService
    tenants: TenantAdminService
    jobs: JobAdminService
    payments: PaymentReadService
    deployments: DeploymentService
    audit: AuditService
    health: HealthService


def build_services(
    *,
    pool: asyncpg.Pool,
    redis: Redis,
    secrets: SecretBox,
    role_prefix: str,
    migrations: list[Migration],
    log_source: LogSource | None = None,
    tenant_cache: TenantCache[Any] | None = None,
) -> Services:
    tenants = TenantService(pool=pool, redis=redis, secrets=secrets, role_prefix=role_prefix)
    return Services(
        api_keys=ApiKeyService(pool=pool),
        plans=PlanService(pool=pool),
        tenants=TenantAdminService(pool=pool, tenants=tenants, secrets=secrets, cache=tenant_cache),
        jobs=JobAdminService(pool=pool),
        payments=PaymentReadService(pool=pool),
        deployments=DeploymentService(pool=pool, logs=log_source),
        audit=AuditService(pool=pool),
        health=HealthService(pool=pool, redis=redis, migrations=migrations),
    )
