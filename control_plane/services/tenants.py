"""Tenant administration: listing, changes and lifecycle transitions, each written with its deploy job
and its audit entry in one transaction (the job carries the request id).

Transitions set the tenant's *desired* state; the deploy worker converges the actual ``status``:

- suspend: desired ``stopped`` + a ``suspend`` job;
- resume: desired ``running`` + a ``resume`` job;
- redeploy: a ``redeploy`` job (only for a tenant meant to run);
- delete: status ``deleting``, desired ``deleted`` + a ``deprovision`` job.

A tenant being deleted accepts no other transition (409). Repeating a transition is harmless: the
queue returns the job already queued instead of a second one.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from control_plane.tenant_cache import TenantCache
from fleet import jobs
from fleet.errors import ConflictError, NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.admin_views import AdminViews
from fleet.repositories.plans import PlanRepository
from fleet.repositories.tenants import ShownTenant, Tenant, TenantRepository
from fleet.secrets import SecretBox, fingerprint
from fleet.tenant_rows import bot_columns
from fleet.tenants import TenantService
from schemas.api import TenantUpdate
from schemas.tenants import TenantCreate

log = logging.getLogger(__name__)

Row = dict[str, Any]
# Fields the tenant bot receives in its runtime environment: changing one redeploys it.
_RUNTIME_FIELDS = frozenset(
    {"display_name", "owner_telegram_ids", "locale", "timezone", "bot_token"}
)
_TOKEN_COLUMNS = frozenset({"bot_token_enc", "bot_token_fingerprint", "bot_id", "bot_username"})


def _with_slug(job: asyncpg.Record | None, slug: str) -> Row | None:
    return None if job is None else {**dict(job), "tenant_slug": slug}


def _not_deleting(tenant: Tenant) -> None:
    if tenant.status in ("deleting", "deleted") or tenant.desired_state == "deleted":
        raise ConflictError(
            "status", f"tenant {tenant.slug!r} is being deleted; it cannot be changed"
        )


def _meant_to_run(tenant: Tenant) -> None:
    _not_deleting(tenant)
    if tenant.desired_state != "running":
        raise ConflictError(
            "desired_state",
            f"tenant {tenant.slug!r} is suspended (desired state {tenant.desired_state}); "
            "resume it instead of redeploying",
        )


class TenantAdminService:
    """What the admin API does to tenants. A change forgets the tenant in ``cache`` as soon as it is
    committed, so the caller's next read shows it (other processes learn it by notification)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tenants: TenantService,
        secrets: SecretBox,
        cache: TenantCache[Any] | None = None,
    ) -> None:
        self._pool = pool
        self._tenants = tenants
        self._secrets = secrets
        self._cache = cache

    def _changed(self, slug: str) -> None:
        if self._cache is not None:
            self._cache.invalidate(slug)

    async def list(
        self,
        *,
        status: str | None = None,
        plan_code: str | None = None,
        after_id: int = 0,
        limit: int = 50,
    ) -> list[Tenant]:
        """Tenants in creation order (keyset on ``id``); deleted ones only when asked for."""
        return await TenantRepository(self._pool).list(
            status=status,
            plan_code=plan_code,
            after_id=after_id,
            limit=limit,
            include_deleted=status == "deleted",
        )

    async def get(self, slug: str) -> Tenant:
        return await self._tenants.get(slug)

    async def get_shown(self, slug: str) -> ShownTenant:
        """Only the columns an answer shows (one round trip, no password ciphertexts)."""
        tenant = await TenantRepository(self._pool).get_shown(slug)
        if tenant is None:
            raise NotFoundError(f"tenant {slug!r} does not exist")
        return tenant

    async def create(
        self, data: TenantCreate, *, actor: str, request_id: str | None
    ) -> tuple[Tenant, Row | None]:
        """Create the tenant and its provision job (one transaction); the deploy worker builds it."""
        tenant = await self._tenants.create(
            data, actor=actor, provision_now=False, request_id=request_id
        )
        queued = await AdminViews(self._pool).jobs(tenant_id=tenant.id, kind="provision", limit=1)
        return tenant, dict(queued[0]) if queued else None

    async def update(
        self, slug: str, data: TenantUpdate, *, actor: str, request_id: str | None
    ) -> tuple[Tenant, Row | None]:
        """Change the given fields; a change the bot sees redeploys a running tenant."""
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise ValidationError(
                "body", "give at least one field to change: " + ", ".join(TenantUpdate.model_fields)
            )
        async with self._pool.acquire() as conn, conn.transaction():
            repo = TenantRepository(conn)
            tenant = await self._locked(repo, slug)
            _not_deleting(tenant)
            columns: dict[str, Any] = {}
            for name, value in changes.items():
                if name == "bot_token":
                    columns.update(self._token_columns(tenant, data))
                    continue
                if (
                    name == "plan_code"
                    and value is not None
                    and await PlanRepository(conn).get(value) is None
                ):
                    raise ValidationError(
                        "plan_code", f"unknown plan {value!r}; list plans to see the codes"
                    )
                if getattr(tenant, name) != value:
                    columns[name] = value
            if not columns:
                return tenant, None
            updated = await repo.update(tenant.id, **columns)
            assert updated is not None
            changed = sorted({"bot_token" if k in _TOKEN_COLUMNS else k for k in columns})
            job = None
            if _RUNTIME_FIELDS & set(changed) and updated.desired_state == "running":
                job = await jobs.enqueue(
                    conn, kind="redeploy", tenant_id=tenant.id, request_id=request_id
                )
            await audit.record(
                conn,
                actor=actor,
                action="tenant.update",
                target=slug,
                details={"fields": changed, "redeploy": job is not None},
                request_id=request_id,
            )
        self._changed(slug)
        log.info("tenant updated", extra={"tenant": slug, "fields": changed, "actor": actor})
        return updated, _with_slug(job, slug)

    def _token_columns(self, tenant: Tenant, data: TenantUpdate) -> dict[str, Any]:
        assert data.bot_token is not None
        token = data.bot_token.get_secret_value()
        if fingerprint(token) == tenant.bot_token_fingerprint:
            return {}
        columns = bot_columns(self._secrets, token)
        if columns["bot_id"] != tenant.bot_id:
            columns["bot_username"] = None  # another bot: the worker learns its name again
        return columns

    async def suspend(
        self, slug: str, *, actor: str, request_id: str | None
    ) -> tuple[Tenant, Row | None]:
        return await self._transition(
            slug,
            action="tenant.suspend",
            job_kind="suspend",
            check=_not_deleting,
            changes={"desired_state": "stopped"},
            actor=actor,
            request_id=request_id,
        )

    async def resume(
        self, slug: str, *, actor: str, request_id: str | None
    ) -> tuple[Tenant, Row | None]:
        return await self._transition(
            slug,
            action="tenant.resume",
            job_kind="resume",
            check=_not_deleting,
            changes={"desired_state": "running"},
            actor=actor,
            request_id=request_id,
        )

    async def redeploy(
        self, slug: str, *, actor: str, request_id: str | None
    ) -> tuple[Tenant, Row | None]:
        return await self._transition(
            slug,
            action="tenant.redeploy",
            job_kind="redeploy",
            check=_meant_to_run,
            changes={},
            actor=actor,
            request_id=request_id,
        )

    async def delete(
        self, slug: str, *, actor: str, request_id: str | None
    ) -> tuple[Tenant, Row | None]:
        """Mark the tenant for deletion; the deploy worker removes its bot and data."""
        return await self._transition(
            slug,
            action="tenant.delete",
            job_kind="deprovision",
            check=lambda tenant: None,
            changes={"status": "deleting", "desired_state": "deleted"},
            actor=actor,
            request_id=request_id,
        )

    async def subscriptions(self, slug: str) -> builtins.list[asyncpg.Record]:
        tenant = await self.get(slug)
        return await AdminViews(self._pool).subscriptions(tenant.id)

    async def _locked(self, repo: TenantRepository, slug: str) -> Tenant:
        found = await repo.get(slug)
        tenant = await repo.lock(found.id) if found is not None else None
        if tenant is None or tenant.deleted_at is not None:
            raise NotFoundError(f"tenant {slug!r} does not exist")
        return tenant

    async def _transition(
        self,
        slug: str,
        *,
        action: str,
        job_kind: str,
        check: Callable[[Tenant], None],
        changes: dict[str, Any],
        actor: str,
        request_id: str | None,
    ) -> tuple[Tenant, Row | None]:
        async with self._pool.acquire() as conn, conn.transaction():
            repo = TenantRepository(conn)
            tenant = await self._locked(repo, slug)
            check(tenant)
            if any(getattr(tenant, k) != v for k, v in changes.items()):
                updated = await repo.update(tenant.id, **changes)
                assert updated is not None
                tenant = updated
            job = await jobs.enqueue(
                conn, kind=job_kind, tenant_id=tenant.id, request_id=request_id
            )
            await audit.record(
                conn,
                actor=actor,
                action=action,
                target=slug,
                details={"job_id": job["id"]},
                request_id=request_id,
            )
        self._changed(slug)
        log.info(action.replace(".", " "), extra={"tenant": slug, "job_id": job["id"]})
        return tenant, _with_slug(job, slug)
