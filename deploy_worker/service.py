"""Wiring: build the worker and its pieces from settings and open connections.

The one place that creates the runtime, the HTTP client for Telegram and the worker's services; the
``botfleet worker`` command, tests and benchmarks all go through :func:`open_worker`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
from redis.asyncio import Redis

from deploy_worker.handlers import JobHandler
from deploy_worker.provisioning import Converger, StepHook
from deploy_worker.reconciler import Reconciler
from deploy_worker.runtimes import Runtime, create_runtime
from deploy_worker.spec import SpecBuilder
from deploy_worker.worker import Worker
from fleet.bot_tokens import BotTokenChecker
from fleet.data_plane import TenantRoleLimits
from fleet.secrets import SecretBox
from fleet.settings import Settings
from fleet.tenants import TenantService
from kit.supervisor import Supervisor
from schemas.runtime import TENANT_DB_POOL_MAX_DEFAULT


@dataclass
class WorkerParts:
    """The worker and what it is made of (tests and the CLI reach the parts through it)."""

    worker: Worker
    runtime: Runtime
    converger: Converger
    reconciler: Reconciler
    specs: SpecBuilder
    tenants: TenantService


@asynccontextmanager
async def open_worker(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    redis: Redis,
    secrets: SecretBox,
    runtime: Runtime | None = None,
    http: httpx.AsyncClient | None = None,
    step_hook: StepHook | None = None,
    worker_id: str | None = None,
    supervisor: Supervisor | None = None,
    provisioner: asyncpg.Pool | None = None,
) -> AsyncIterator[WorkerParts]:
    """Build a worker; closes what it created (the runtime only if it created it; bots keep running).
    ``supervisor`` runs the worker's background loops (default: one of its own, ``worker``)."""
    namespace = settings.tenant_role_prefix
    own_runtime = runtime is None
    if runtime is None:
        runtime = await asyncio.to_thread(create_runtime, settings, namespace=namespace)
    own_http = http is None
    client = http or httpx.AsyncClient(timeout=10.0)
    try:
        warm_up = getattr(runtime, "warm_up", None)
        if warm_up is not None:
            await warm_up()
        tenants = TenantService(
            pool=pool,
            redis=redis,
            secrets=secrets,
            role_prefix=namespace,
            role_limits=TenantRoleLimits.from_settings(settings),
            provisioner=provisioner,
        )
        specs = SpecBuilder(settings=settings, namespace=namespace)
        converger = Converger(
            pool=pool,
            redis=redis,
            tenants=tenants,
            runtime=runtime,
            specs=specs,
            tokens=BotTokenChecker(client=client, api_base=settings.telegram_api_base),
            heartbeat_timeout=settings.heartbeat_timeout_s,
            step_hook=step_hook,
        )
        reconciler = Reconciler(
            pool=pool,
            redis=redis,
            runtime=runtime,
            specs=specs,
            tenants=tenants,
            crash_loop_restarts=settings.crash_loop_restarts,
            crash_loop_window_s=settings.crash_loop_window_s,
            heartbeat_grace_s=settings.heartbeat_timeout_s,
            concurrency=settings.worker_concurrency,
            role_limits=TenantRoleLimits.from_settings(settings),
            pool_max=settings.tenant_db_pool_max or TENANT_DB_POOL_MAX_DEFAULT,
            capacity_ttl_s=max(60.0, 3 * settings.reconcile_interval_s),
            pooler_stats_url=(
                settings.pooler_stats_url.get_secret_value()
                if settings.pooler_stats_url is not None
                else None
            ),
        )
        worker = Worker(
            pool=pool,
            handler=JobHandler(converger=converger),
            reconciler=reconciler,
            worker_id=worker_id,
            concurrency=settings.worker_concurrency,
            lease_s=settings.worker_lease_s,
            poll_s=settings.worker_poll_s,
            reconcile_interval_s=settings.reconcile_interval_s,
            shutdown_s=settings.worker_shutdown_s,
            supervisor=supervisor,
        )
        yield WorkerParts(worker, runtime, converger, reconciler, specs, tenants)
    finally:
        if own_http:
            await client.aclose()
        if own_runtime:
            await runtime.close()
