"""Rows to public API models. Everything a response shows passes through here, so this is where
secrets are kept in: bot tokens masked, encrypted columns dropped, secret-looking keys of free-form
JSON (job payloads, audit details, payment metadata) redacted and free text masked like the logs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from control_plane.services.tenants import TenantAdminService
from control_plane.tenant_cache import TenantCache
from fleet.errors import SecretError
from fleet.logs import mask
from fleet.repositories.tenants import ShownTenant
from fleet.secrets import SecretBox, mask_token
from schemas.api import (
    AuditEntryPublic,
    DeploymentPublic,
    JobPublic,
    PaymentPublic,
    SubscriptionPublic,
    TenantPublic,
)
from schemas.plans import PlanPublic

log = logging.getLogger(__name__)

# An asyncpg record or a dict of its columns.
Row = Mapping[str, Any]

_SECRET_KEY_PARTS = ("token", "password", "secret", "passwd", "_enc", "api_key", "authorization")
REDACTED = "***"


def redact(value: Any) -> Any:
    """A copy of JSON ``value`` with secret-looking keys replaced and strings masked."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if any(part in str(key).lower() for part in _SECRET_KEY_PARTS)
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return mask(value)
    return value


def _masked(text: str | None) -> str | None:
    return mask(text) if text is not None else None


def plan(row: Row) -> PlanPublic:
    return PlanPublic.model_validate(dict(row))


class TokenMasker:
    """Masked bot tokens by ciphertext: a tenant read often is not decrypted on every read (the
    masked form is no secret; the plain token is never kept)."""

    def __init__(self, secrets: SecretBox, *, max_entries: int = 10_000) -> None:
        self._secrets = secrets
        self._max_entries = max_entries
        self._masked: dict[str, str] = {}

    def mask(self, tenant: ShownTenant) -> str:
        ciphertext = tenant.bot_token_enc
        masked = self._masked.get(ciphertext)
        if masked is not None:
            return masked
        try:
            masked = mask_token(self._secrets.decrypt(ciphertext))
        except SecretError as exc:
            log.warning(
                "bot token not decryptable", extra={"tenant": tenant.slug, "error": str(exc)}
            )
            return f"{tenant.bot_id}:…"
        if len(self._masked) >= self._max_entries:
            self._masked.clear()
        self._masked[ciphertext] = masked
        return masked


def tenant(row: ShownTenant, *, tokens: TokenMasker) -> TenantPublic:
    """A tenant (a :class:`~fleet.repositories.tenants.Tenant` is one too) as the API shows it."""
    return TenantPublic(
        slug=row.slug,
        display_name=row.display_name,
        owner_telegram_ids=list(row.owner_telegram_ids),
        status=row.status,
        status_reason=_masked(row.status_reason),
        desired_state=row.desired_state,
        plan_code=row.plan_code,
        locale=row.locale,
        timezone=row.timezone,
        bot_id=row.bot_id,
        bot_username=row.bot_username,
        bot_token=tokens.mask(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class TenantReader:
    """One tenant read and rendered, for ``GET /tenants/{slug}`` (the API's busiest route): a single
    dependency instead of two (the service and the masker), each one FastAPI resolves per request.
    Rendered tenants are kept in ``cache`` (see :mod:`control_plane.tenant_cache` for when they are
    served and forgotten); without one, every read goes to PostgreSQL."""

    def __init__(
        self,
        *,
        tenants: TenantAdminService,
        tokens: TokenMasker,
        cache: TenantCache[TenantPublic] | None = None,
    ) -> None:
        self._tenants = tenants
        self._tokens = tokens
        self._cache = cache

    async def get(self, slug: str) -> TenantPublic:
        cache = self._cache
        if cache is None:
            return tenant(await self._tenants.get_shown(slug), tokens=self._tokens)
        shown = cache.get(slug)
        if shown is None:
            generation = cache.generation
            shown = tenant(await self._tenants.get_shown(slug), tokens=self._tokens)
            cache.put(slug, shown, generation=generation)
        return shown


def job(row: Row) -> JobPublic:
    return JobPublic(
        id=row["id"],
        kind=row["kind"],
        tenant=row.get("tenant_slug"),
        status=row["status"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        payload=redact(row["payload"] or {}),
        last_error=_masked(row["last_error"]),
        request_id=row["request_id"],
        run_after=row["run_after"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def subscription(row: Row) -> SubscriptionPublic:
    return SubscriptionPublic(
        id=row["id"],
        tenant=row["tenant_slug"],
        plan_code=row["plan_code"],
        status=row["status"],
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        auto_renew=row["auto_renew"],
        has_saved_payment_method=row["payment_method_id_enc"] is not None,
        payment_method_title=row.get("payment_method_title"),
        reminders_sent=list(row["reminders_sent"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def payment(row: Row) -> PaymentPublic:
    return PaymentPublic(
        id=row["id"],
        tenant=row["tenant_slug"],
        plan_code=row["plan_code"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        purpose=row.get("purpose"),
        provider=row["provider"],
        provider_payment_id=row["provider_payment_id"],
        confirmation_url=row["confirmation_url"],
        description=row["description"],
        metadata=redact(row["metadata"] or {}),
        save_payment_method=row["save_payment_method"],
        cancellation_reason=row["cancellation_reason"],
        applied_at=row["applied_at"],
        paid_at=row["paid_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def deployment(row: Row) -> DeploymentPublic:
    return DeploymentPublic(
        tenant=row["tenant_slug"],
        desired_state=row["desired_state"],
        runtime=row["runtime"],
        status=row["status"],
        image=row["image"],
        spec_hash=row["spec_hash"],
        container_id=row["container_id"],
        restart_count=row["restart_count"],
        last_error=_masked(row["last_error"]),
        started_at=row["started_at"],
        ready_at=row["ready_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def audit_entry(row: Row) -> AuditEntryPublic:
    return AuditEntryPublic(
        id=row["id"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        details=redact(row["details"] or {}),
        request_id=row["request_id"],
        created_at=row["created_at"],
    )
