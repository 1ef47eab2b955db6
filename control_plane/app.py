"""The control plane's FastAPI app: :func:`create_app` wires settings, clients, services, routers,
error handling and the request middleware. Nothing here is a module-level singleton: every app builds
its own pool, Redis client, services and metrics registry in its lifespan (or takes injected ones)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from redis.asyncio import Redis

from control_plane import problems
from control_plane.auth import Authenticator
from control_plane.docs import install_docs
from control_plane.idempotency import IdempotencyStore
from control_plane.metrics import Metrics
from control_plane.middleware import RequestContextMiddleware
from control_plane.ratelimit import RateLimiter
from control_plane.render import TenantReader, TokenMasker
from control_plane.routes import (
    audit,
    billing,
    deployments,
    events,
    health,
    jobs,
    payments,
    plan_changes,
    plans,
    refunds,
    tenants,
)
from control_plane.services import build_services
from control_plane.services.deployments import LogSource
from control_plane.tenant_cache import TenantCache, TenantChangeListener
from fleet.billing.wiring import open_billing
from fleet.db import connect, create_pool
from fleet.identifiers import platform_redis_key
from fleet.migrations import load_migrations
from fleet.secrets import SecretBox
from fleet.settings import Settings, load_settings
from kit.loops import every
from kit.supervisor import Supervisor
from schemas.api import Problem, TenantPublic

log = logging.getLogger(__name__)

# Every router of the API, in one place: a new resource is one more line here. Routers are tried in
# this order on every request, so the API's own come first; health and billing (few calls) last.
ROUTERS: list[APIRouter] = [
    plans.router,
    tenants.router,
    plan_changes.router,
    deployments.router,
    payments.router,
    refunds.router,
    jobs.router,
    events.router,
    audit.router,
    billing.router,
    health.router,
]

DESCRIPTION = """\
The admin API of botfleet: plans, tenants, subscriptions, payments, deployments, jobs and the audit log.

* **Auth**: `Authorization: Bearer <key>` with a key from `botfleet apikeys create --scope admin|read|sales`.
  401 without a valid key, 403 when the key lacks the scope, 429 (with `Retry-After`) over the key's rate.
* **Errors** are `application/problem+json`; validation problems list every invalid field in `errors`.
* **POST** honours `Idempotency-Key`: a retry with the same key and body gets the first answer.
* **Pages**: pass `next_cursor` back as `cursor`; pages are stable while rows are being added.
* **Request ids**: send `X-Request-Id` or get one back; it is logged and stored with the jobs a request queues.
* Secrets never appear: bot tokens are masked (`123456:AB…yz`), passwords never shown.
"""

IDEMPOTENCY_PURGE_INTERVAL_S = 600.0


def create_app(
    settings: Settings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    redis: Redis | None = None,
    log_source: LogSource | None = None,
    supervisors: Sequence[Supervisor] = (),
) -> FastAPI:
    """Build the API. The lifespan opens the PostgreSQL pool and Redis client from ``settings``
    unless they are injected (injected clients are left open for their owner to close).

    The API's own background loops (tenant cache listener, idempotency purge) run under a
    supervisor of the app (``app.state.supervisor``, process ``api``); ``supervisors`` are other
    components of the same process (``botfleet up``: worker, lifecycle, sales bot) whose loops
    ``/readyz`` and ``/metrics`` report as well."""
    config = settings or load_settings()
    metrics = Metrics()
    for other in supervisors:
        metrics.watch_supervisor(other)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            db = pool
            if db is None:
                db = await create_pool(
                    config.require("database_url"),
                    max_size=config.db_pool_size,
                    reset=_keep_session,
                    # No idle timer: asyncpg re-arms one on every release (a timer handle per
                    # query); the API keeps its few connections open instead.
                    max_inactive_connection_lifetime=0,
                )
                stack.push_async_callback(db.close)
            client = redis
            if client is None:
                client = Redis.from_url(config.require("redis_url"), socket_connect_timeout=5)
                stack.push_async_callback(client.aclose)
            secrets = SecretBox(config.require("master_key"))
            supervisor = app.state.supervisor = Supervisor("api")
            stack.callback(metrics.watch_supervisor(supervisor))
            tenant_cache = await _start_tenant_cache(
                app, config=config, stack=stack, metrics=metrics, supervisor=supervisor
            )
            stack.push_async_callback(supervisor.stop)  # before the listener's connection goes
            services = build_services(
                pool=db,
                redis=client,
                secrets=secrets,
                role_prefix=config.tenant_role_prefix,
                migrations=await asyncio.to_thread(load_migrations, "control"),
                log_source=log_source,
                tenant_cache=tenant_cache,
            )
            app.state.pool = db
            app.state.redis = client
            app.state.role_prefix = config.tenant_role_prefix
            app.state.ratelimit_key = platform_redis_key(config.tenant_role_prefix, "ratelimit")
            app.state.secrets = secrets
            app.state.tokens = TokenMasker(secrets)
            app.state.tenant_reader = TenantReader(
                tenants=services.tenants, tokens=app.state.tokens, cache=tenant_cache
            )
            app.state.metrics = metrics
            app.state.services = services
            app.state.authenticator = Authenticator(
                api_keys=services.api_keys,
                limiter=RateLimiter(
                    redis=client, rate=config.api_rate_limit, key_prefix=app.state.ratelimit_key
                ),
                cache_s=config.api_key_cache_s,
            )
            app.state.idempotency = IdempotencyStore(
                pool=db, ttl_s=config.api_idempotency_hours * 3600.0
            )
            if config.yookassa_shop_id and config.yookassa_secret_key:
                app.state.billing = await stack.enter_async_context(
                    open_billing(settings=config, pool=db, secrets=secrets)
                )
            supervisor.add(
                "idempotency_purge",
                partial(
                    every,
                    IDEMPOTENCY_PURGE_INTERVAL_S,
                    partial(_purge_idempotency_keys, app.state.idempotency),
                    on_tick=supervisor.beater("idempotency_purge"),
                ),
                stale_after=3 * IDEMPOTENCY_PURGE_INTERVAL_S,
            )
            services.health.watch(supervisor, *supervisors)
            supervisor.start()
            log.info("control plane API started", extra={"rate_limit": config.api_rate_limit})
            yield

    app = FastAPI(
        title="botfleet control plane",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    for router in ROUTERS:
        app.include_router(router)
    problems.install(app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # FastAPI's documented way to customise the schema is to replace the method on the app.
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the ``Problem`` component that every error response refers to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["Problem"].pop("$defs", {}))
        app.openapi_schema = schema
    return app.openapi_schema


async def _start_tenant_cache(
    app: FastAPI,
    *,
    config: Settings,
    stack: contextlib.AsyncExitStack,
    metrics: Metrics,
    supervisor: Supervisor,
) -> TenantCache[TenantPublic] | None:
    """The cache of ``GET /tenants/{slug}`` and its LISTEN connection (its own, outside the pool:
    a LISTEN session must stay on one connection); None when turned off or when no database URL is
    configured (an injected pool alone gives no connection to LISTEN on)."""
    app.state.tenant_cache = app.state.tenant_listener = None
    if config.api_tenant_cache_size <= 0 or not config.database_url:
        return None
    cache: TenantCache[TenantPublic] = TenantCache(max_entries=config.api_tenant_cache_size)
    listener = TenantChangeListener(
        cache=cache,
        connect=partial(
            connect,
            config.database_url,
            server_settings={"application_name": "botfleet-api-tenant-cache"},
        ),
    )
    await listener.start(supervisor)
    stack.push_async_callback(listener.stop)
    metrics.watch_tenant_cache(cache)
    app.state.tenant_cache, app.state.tenant_listener = cache, listener
    return cache


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's session reset (``RESET ALL; UNLISTEN *; ...``: one round trip per query) when
    a connection returns to the pool: the API keeps no session state (no LISTEN, no session SET, only
    transaction-scoped advisory locks). asyncpg still rolls back a transaction left open."""


async def _purge_idempotency_keys(store: IdempotencyStore) -> None:
    """Delete expired idempotency keys (one pass; failures are the supervisor's to log and retry)."""
    purged = await store.purge()
    if purged:
        log.info("expired idempotency keys purged", extra={"count": purged})
