"""Tenant lifecycle rules shared by the CLI, the control plane and the deploy worker."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

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
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import TenantRepository
from fleet.secrets import SecretBox, fingerprint, generate_password
from schemas.tenants import TenantCreate, bot_id_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantSecrets:
    """A tenant's decrypted secrets: only for the data plane and the runtime spec."""

    bot_token: str
    db_password: str
    redis_password: str


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

    def secrets_of(self, tenant: asyncpg.Record) -> TenantSecrets:
        return TenantSecrets(
            bot_token=self._secrets.decrypt(tenant["bot_token_enc"]),
            db_password=self._secrets.decrypt(tenant["db_password_enc"]),
            redis_password=self._secrets.decrypt(tenant["redis_password_enc"]),
        )

    async def create(
        self,
        data: TenantCreate,
        *,
        actor: str,
        provision_now: bool,
        enqueue_provision: bool = True,
        request_id: str | None = None,
    ) -> asyncpg.Record:
        """Create a tenant: the control row (desired state ``running``) and a provision job, in one
        transaction. With ``provision_now`` the data plane is built in that same transaction too
        (Redis last, undone if the commit fails), so a failure leaves nothing behind; with a
        provisioner role, on its own connection, and dropped again if the control row fails."""
        token = data.bot_token.get_secret_value()
        names = self.names(data.slug)
        db_password, redis_password = generate_password(), generate_password()
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
                    repo = TenantRepository(conn)
                    if await repo.using_bot(fingerprint(token), bot_id_of(token)) is not None:
                        raise ConflictError(
                            "bot_token",
                            "this bot token is already used by another tenant; "
                            "create a new bot with @BotFather",
                        )
                    tenant = await repo.insert(
                        slug=data.slug,
                        display_name=data.display_name,
                        owner_telegram_ids=data.owner_telegram_ids,
                        plan_code=data.plan_code,
                        locale=data.locale,
                        timezone=data.timezone,
                        bot_token_enc=self._secrets.encrypt(token),
                        bot_token_fingerprint=fingerprint(token),
                        bot_id=bot_id_of(token),
                        db_password_enc=self._secrets.encrypt(db_password),
                        redis_password_enc=self._secrets.encrypt(redis_password),
                        status="provisioning",
                        desired_state="running",
                    )
                    if provision_now:
                        database_touched = ddl is not conn
                        await ensure_database_plane(
                            ddl, names, password=db_password, limits=self._limits
                        )
                    if enqueue_provision:
                        await jobs.enqueue(
                            conn, kind="provision", tenant_id=tenant["id"], request_id=request_id
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
                        await ensure_redis_user(self._redis, names, password=redis_password)
            except BaseException:
                if redis_touched:
                    await drop_redis_user(self._redis, names)
                if database_touched:  # not in the rolled-back transaction: undone by hand
                    await drop_database_plane(ddl, names)
                raise
        log.info("tenant created", extra={"tenant": data.slug, "actor": actor})
        return tenant

    async def ensure_data_plane(self, tenant: asyncpg.Record) -> list[str]:
        """Converge the tenant's role, schema, migrations and Redis user (idempotent)."""
        names = self.names(tenant["slug"])
        secrets = self.secrets_of(tenant)
        async with self.ddl_pool.acquire() as conn:
            applied = await ensure_database_plane(
                conn, names, password=secrets.db_password, limits=self._limits
            )
        await ensure_redis_user(self._redis, names, password=secrets.redis_password)
        if tenant.get("legacy_redis_keys"):
            # A tenant from before installation prefixes: its keys move under its prefix once.
            moved = await move_legacy_keys(self._redis, names)
            await TenantRepository(self._pool).update(tenant["id"], legacy_redis_keys=False)
            log.info("tenant redis keys moved", extra={"tenant": names.slug, "keys": moved})
        return applied

    async def drop_data_plane(self, slug: str) -> None:
        """Drop the tenant's schema, role, Redis user and keys (idempotent)."""
        names = self.names(slug)
        tenant = await TenantRepository(self._pool).get(slug)
        async with self.ddl_pool.acquire() as conn:
            await drop_database_plane(conn, names)
        legacy = bool(tenant is not None and tenant.get("legacy_redis_keys"))
        await drop_redis_user(self._redis, names, legacy=legacy)

    async def get(self, slug: str) -> asyncpg.Record:
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
                tenant["id"], status="deleting", desired_state="deleted"
            )
            await audit.record(
                conn, actor=actor, action="tenant.delete", target=slug, request_id=request_id
            )
        await self.drop_data_plane(slug)
        await TenantRepository(self._pool).mark_deleted(tenant["id"])
        log.info("tenant deleted", extra={"tenant": slug, "actor": actor})
