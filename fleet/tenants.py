"""Tenant lifecycle rules shared by the CLI, the control plane and the deploy worker."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

import asyncpg
from redis.asyncio import Redis

from fleet import jobs
from fleet.data_plane import (
    DEFAULT_ROLE_LIMITS,
    TenantNames,
    TenantRoleLimits,
    drop_database_plane,
    drop_redis_user,
    ensure_database_plane,
    ensure_redis_user,
    move_legacy_keys,
)
from fleet.errors import NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import Tenant, TenantRepository
from fleet.secrets import SecretBox
from fleet.tenant_rows import NewTenant, TenantSecrets, insert_tenant, secrets_of
from schemas.tenants import TenantCreate

log = logging.getLogger(__name__)


class TenantService:
    """Creates, converges and removes tenants: the control row and the data plane."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        secrets: SecretBox,
        role_prefix: str = "tenant_",
        role_limits: TenantRoleLimits = DEFAULT_ROLE_LIMITS,
        provisioner: asyncpg.Pool | None = None,
    ) -> None:
        """``provisioner``: a pool logged in as the narrow role that creates and drops tenant
        roles and schemas (``BOTFLEET_PROVISIONER_DATABASE_URL``); None: ``pool`` does it."""
        self._pool = pool
        self._provisioner = provisioner
        self._redis = redis
        self._secrets = secrets
        self._prefix = role_prefix
        self._limits = role_limits

    def names(self, slug: str) -> TenantNames:
        return TenantNames.of(slug, self._prefix)

    @property
    def ddl_pool(self) -> asyncpg.Pool:
        """Where tenant roles and schemas are created, altered and dropped."""
        return self._provisioner or self._pool

    def secrets_of(self, tenant: Tenant) -> TenantSecrets:
        return secrets_of(self._secrets, tenant)

    async def create(
        self,
        data: TenantCreate,
        *,
        actor: str,
        provision_now: bool,
        enqueue_provision: bool = True,
        request_id: str | None = None,
    ) -> Tenant:
        """Create a tenant: the control row (desired state ``running``) and a provision job, in one
        transaction. With ``provision_now`` the data plane is built in that same transaction too
        (Redis last, undone if the commit fails), so a failure leaves nothing behind; with a
        provisioner role, on its own connection, and dropped again if the control row fails."""
        names = self.names(data.slug)
        async with self._pool.acquire() as conn, AsyncExitStack() as stack:
            ddl = conn
            if provision_now and self._provisioner is not None:
                ddl = await stack.enter_async_context(self._provisioner.acquire())
            if (
                data.plan_code is not None
                and await PlanRepository(conn).get(data.plan_code) is None
            ):
                raise ValidationError(
                    "plan_code",
                    f"unknown plan {data.plan_code!r}; list plans with `botfleet plans list`",
                )
            redis_touched = database_touched = False
            try:
                async with conn.transaction():
                    tenant, secrets = await insert_tenant(
                        conn,
                        self._secrets,
                        NewTenant(
                            slug=data.slug,
                            display_name=data.display_name,
                            owner_telegram_ids=data.owner_telegram_ids,
                            bot_token=data.bot_token.get_secret_value(),
                            plan_code=data.plan_code,
                            locale=data.locale,
                            timezone=data.timezone,
                            status="provisioning",
                            desired_state="running",
                        ),
                    )
                    if provision_now:
                        database_touched = ddl is not conn
                        await ensure_database_plane(
                            ddl, names, password=secrets.db_password, limits=self._limits
                        )
                    if enqueue_provision:
                        await jobs.enqueue(
                            conn, kind="provision", tenant_id=tenant.id, request_id=request_id
                        )
                    await audit.record(
                        conn,
                        actor=actor,
                        action="tenant.create",
                        target=data.slug,
                        details={"plan_code": data.plan_code, "provision_now": provision_now},
                        request_id=request_id,
                    )
                    if provision_now:
                        redis_touched = True
                        await ensure_redis_user(self._redis, names, password=secrets.redis_password)
            except BaseException:
                if redis_touched:
                    await drop_redis_user(self._redis, names)
                if database_touched:  # not in the rolled-back transaction: undone by hand
                    await drop_database_plane(ddl, names)
                raise
        log.info("tenant created", extra={"tenant": data.slug, "actor": actor})
        return tenant

    async def ensure_data_plane(self, tenant: Tenant) -> list[str]:
        """Converge the tenant's role, schema, migrations and Redis user (idempotent)."""
        names = self.names(tenant.slug)
        secrets = self.secrets_of(tenant)
        async with self.ddl_pool.acquire() as conn:
            applied = await ensure_database_plane(
                conn, names, password=secrets.db_password, limits=self._limits
            )
        await ensure_redis_user(self._redis, names, password=secrets.redis_password)
        if tenant.legacy_redis_keys:
            # A tenant from before installation prefixes: its keys move under its prefix once.
            moved = await move_legacy_keys(self._redis, names)
            await TenantRepository(self._pool).update(tenant.id, legacy_redis_keys=False)
            log.info("tenant redis keys moved", extra={"tenant": names.slug, "keys": moved})
        return applied

    async def drop_data_plane(self, slug: str) -> None:
        """Drop the tenant's schema, role, Redis user and keys (idempotent)."""
        names = self.names(slug)
        tenant = await TenantRepository(self._pool).get(slug)
        async with self.ddl_pool.acquire() as conn:
            await drop_database_plane(conn, names)
        legacy = tenant is not None and tenant.legacy_redis_keys
        await drop_redis_user(self._redis, names, legacy=legacy)

    async def get(self, slug: str) -> Tenant:
        tenant = await TenantRepository(self._pool).get(slug)
        if tenant is None:
            raise NotFoundError(f"tenant {slug!r} does not exist")
        return tenant

    async def delete_now(self, slug: str, *, actor: str, request_id: str | None = None) -> None:
        """Tear the data plane down and mark the tenant deleted (the deploy worker's reconciler
        removes its container as an orphan). Re-running after a crash finishes the job."""
        tenant = await self.get(slug)
        async with self._pool.acquire() as conn, conn.transaction():
            await TenantRepository(conn).update(
                tenant.id, status="deleting", desired_state="deleted"
            )
            await audit.record(
                conn, actor=actor, action="tenant.delete", target=slug, request_id=request_id
            )
        await self.drop_data_plane(slug)
        await TenantRepository(self._pool).mark_deleted(tenant.id)
        log.info("tenant deleted", extra={"tenant": slug, "actor": actor})
