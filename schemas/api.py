"""Bodies of the control plane REST API (plans live in :mod:`schemas.plans`, tenant creation in
:mod:`schemas.tenants`). ``XUpdate`` is what a PATCH accepts, ``XPublic`` what the API shows: public
models carry no secret — bot tokens appear masked, passwords and encrypted values never."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.json_schema import SkipJsonSchema

from schemas.plans import PLAN_CODE_PATTERN, not_null
from schemas.tenants import Locale, check_bot_token, check_timezone

T = TypeVar("T")

TenantStatus = Literal[
    "new", "provisioning", "active", "suspended", "error", "degraded", "deleting", "deleted"
]
DesiredState = Literal["running", "stopped", "deleted"]
JobKind = Literal["provision", "deprovision", "suspend", "resume", "redeploy"]
JobStatus = Literal["queued", "running", "done", "dead", "cancelled"]
DeploymentStatus = Literal[
    "pending", "starting", "running", "stopped", "failed", "degraded", "removed"
]
PaymentStatus = Literal["new", "pending", "waiting_for_capture", "succeeded", "canceled"]
SubscriptionStatus = Literal["active", "grace", "expired", "cancelled"]


# --- errors and pages -------------------------------------------------------------------------


class FieldError(BaseModel):
    """One invalid input: which field, and what to do about it."""

    field: str = Field(
        description="Dotted path of the field, e.g. `slug` or `owner_telegram_ids.0`"
    )
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 ``application/problem+json``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:botfleet:problem:validation",
                    "title": "Invalid request",
                    "status": 422,
                    "detail": "slug: must match ^[a-z][a-z0-9_]{2,30}$, e.g. barber_ivan",
                    "instance": "/api/v1/tenants",
                    "request_id": "3f2b9c1e7a8d4e0f",
                    "errors": [{"field": "slug", "message": "must match ^[a-z][a-z0-9_]{2,30}$"}],
                }
            ]
        }
    )

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong and what to do about it")
    instance: str = Field(description="The path of the request")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="For validation problems: every invalid field"
    )


class Page(BaseModel, Generic[T]):
    """One page of a listing. Pass ``next_cursor`` back as ``cursor`` for the next page; it is
    null on the last page. Pages are keyset-based: rows inserted meanwhile never shift them."""

    items: list[T]
    next_cursor: str | None = None


# --- health -----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    """Whether this process can serve: PostgreSQL and Redis answer, migrations are current."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {
                        "postgres": {"ok": True, "detail": "answered in 1.2 ms"},
                        "redis": {"ok": True, "detail": "answered in 0.4 ms"},
                        "migrations": {"ok": True, "detail": "2 control migrations applied"},
                    },
                }
            ]
        }
    )

    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]


# --- tenants ----------------------------------------------------------------------------------

_TENANT_EXAMPLE: dict[str, Any] = {
    "slug": "barber_ivan",
    "display_name": "Ivan's Barbershop",
    "owner_telegram_ids": [123456789],
    "status": "active",
    "status_reason": None,
    "desired_state": "running",
    "plan_code": "basic",
    "locale": "ru",
    "timezone": "Europe/Moscow",
    "bot_id": 7012345678,
    "bot_username": "ivan_barber_bot",
    "bot_token": "7012345678:AA…mn",
    "created_at": "2025-01-15T10:00:00Z",
    "updated_at": "2025-01-15T10:05:00Z",
}


class TenantPublic(BaseModel):
    """A tenant as the API shows it; the bot token is masked."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TENANT_EXAMPLE]})

    slug: str
    display_name: str
    owner_telegram_ids: list[int]
    status: TenantStatus
    status_reason: str | None
    desired_state: DesiredState
    plan_code: str | None
    locale: str
    timezone: str
    bot_id: int
    bot_username: str | None
    bot_token: str = Field(description="Masked: `<bot id>:<first two>…<last two>`")
    created_at: datetime
    updated_at: datetime


class TenantUpdate(BaseModel):
    """Changes to a tenant; omitted fields stay as they are. A new bot token, locale or time zone
    redeploys a running tenant's bot."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"display_name": "Ivan's Barbershop & Spa", "plan_code": "pro"},
                {"bot_token": "7098765432:AAH1anotherTokenValue_abcdefghijkl"},
            ]
        },
    )

    display_name: Annotated[str, Field(min_length=1, max_length=128)] | SkipJsonSchema[None] = None
    owner_telegram_ids: (
        Annotated[list[int], Field(min_length=1, max_length=10)] | SkipJsonSchema[None]
    ) = None
    plan_code: Annotated[str, Field(pattern=PLAN_CODE_PATTERN)] | None = Field(
        default=None, description="null removes the plan"
    )
    locale: Locale | SkipJsonSchema[None] = None
    timezone: Annotated[str, Field(max_length=64)] | SkipJsonSchema[None] = None
    bot_token: Annotated[SecretStr, Field(max_length=100)] | SkipJsonSchema[None] = None

    _not_null = field_validator("locale")(not_null)

    @field_validator("display_name")
    @classmethod
    def _check_name(cls, value: str | None) -> str:
        value = not_null(value)
        assert isinstance(value, str)
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("owner_telegram_ids")
    @classmethod
    def _check_owner_ids(cls, value: list[int] | None) -> list[int]:
        not_null(value)
        assert value is not None
        for owner in value:
            if owner <= 0 or owner >= 2**52:
                raise ValueError("Telegram user ids are positive integers, e.g. 123456789")
        return list(dict.fromkeys(value))

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str:
        not_null(value)
        assert value is not None
        return check_timezone(value)

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr:
        not_null(value)
        assert value is not None
        return SecretStr(check_bot_token(value.get_secret_value()))


# --- jobs -------------------------------------------------------------------------------------


class JobPublic(BaseModel):
    """A deploy-worker job; secrets in its payload or error are masked."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "kind": "provision",
                    "tenant": "barber_ivan",
                    "status": "queued",
                    "attempts": 0,
                    "max_attempts": 8,
                    "payload": {},
                    "last_error": None,
                    "request_id": "3f2b9c1e7a8d4e0f",
                    "run_after": "2025-01-15T10:00:00Z",
                    "created_at": "2025-01-15T10:00:00Z",
                    "updated_at": "2025-01-15T10:00:00Z",
                    "finished_at": None,
                }
            ]
        }
    )

    id: int
    kind: JobKind
    tenant: str | None = Field(description="Slug of the tenant the job works on")
    status: JobStatus
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    last_error: str | None
    request_id: str | None = Field(description="The API request that queued the job")
    run_after: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class TenantAccepted(BaseModel):
    """A tenant and the job queued to converge it (null when nothing had to be queued)."""

    tenant: TenantPublic
    job: JobPublic | None


# --- subscriptions and payments ---------------------------------------------------------------


class SubscriptionPublic(BaseModel):
    """A tenant's subscription; the saved payment method itself never appears."""

    id: int
    tenant: str
    plan_code: str
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    auto_renew: bool
    has_saved_payment_method: bool
    payment_method_title: str | None = Field(default=None, examples=["Bank card *4477"])
    reminders_sent: list[str]
    created_at: datetime
    updated_at: datetime


class PaymentPublic(BaseModel):
    """A payment as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "1f0c8a52-9d3e-4a57-8b1e-2c7d9e4f6a10",
                    "tenant": "barber_ivan",
                    "plan_code": "basic",
                    "amount": "990.00",
                    "currency": "RUB",
                    "status": "succeeded",
                    "purpose": "purchase",
                    "provider": "yookassa",
                    "provider_payment_id": "2f2b5a4e-000f-5000-8000-1a2b3c4d5e6f",
                    "confirmation_url": None,
                    "description": "Basic plan, 30 days",
                    "metadata": {"tenant": "barber_ivan"},
                    "save_payment_method": False,
                    "cancellation_reason": None,
                    "applied_at": "2025-01-15T10:01:00Z",
                    "paid_at": "2025-01-15T10:01:00Z",
                    "created_at": "2025-01-15T10:00:00Z",
                    "updated_at": "2025-01-15T10:01:00Z",
                }
            ]
        }
    )

    id: UUID
    tenant: str | None
    plan_code: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    purpose: str | None = None
    provider: str
    provider_payment_id: str | None
    confirmation_url: str | None
    description: str
    metadata: dict[str, Any]
    save_payment_method: bool
    cancellation_reason: str | None
    applied_at: datetime | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- deployments ------------------------------------------------------------------------------


class DeploymentPublic(BaseModel):
    """What the deploy worker last reported about a tenant's bot container."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "barber_ivan",
                    "desired_state": "running",
                    "runtime": "docker",
                    "status": "running",
                    "image": "botfleet/tenant-bot:0.1.0",
                    "spec_hash": "9c1e7a8d",
                    "container_id": "4e0f3f2b9c1e",
                    "restart_count": 0,
                    "last_error": None,
                    "started_at": "2025-01-15T10:02:00Z",
                    "ready_at": "2025-01-15T10:02:05Z",
                    "created_at": "2025-01-15T10:01:30Z",
                    "updated_at": "2025-01-15T10:02:05Z",
                }
            ]
        }
    )

    tenant: str
    desired_state: DesiredState
    runtime: str
    status: DeploymentStatus
    image: str | None
    spec_hash: str | None
    container_id: str | None
    restart_count: int
    last_error: str | None
    started_at: datetime | None
    ready_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DeploymentLogs(BaseModel):
    """The last lines the tenant's bot wrote (tokens and phone numbers masked)."""

    tenant: str
    source: str = Field(description="Where the lines were read from")
    lines: list[str]


# --- audit ------------------------------------------------------------------------------------


class AuditEntryPublic(BaseModel):
    """Who did what, when, and through which request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "actor": "apikey:3/ops-alice",
                    "action": "tenant.suspend",
                    "target": "barber_ivan",
                    "details": {},
                    "request_id": "3f2b9c1e7a8d4e0f",
                    "created_at": "2025-01-15T10:00:00Z",
                }
            ]
        }
    )

    id: int
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    request_id: str | None
    created_at: datetime


# --- events (the owner-notice outbox) -----------------------------------------------------------

EventState = Literal["pending", "failed", "delivered"]
EVENT_KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


class EventPublic(BaseModel):
    """One event of the outbox the sales bot delivers to tenant owners. ``state`` is ``failed``
    when it was set aside (``last_error`` says why; retry it once the cause is fixed), ``pending``
    while waiting for delivery, ``delivered`` when done. Who the owners are is not shown: only how
    many of them were already told (a retry does not tell them again)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 314,
                    "kind": "tenant.suspended",
                    "tenant": "barber_ivan",
                    "state": "failed",
                    "payload": {"previous_status": "active"},
                    "attempts": 1,
                    "last_error": "template event_tenant_suspended: 'delete_at' is undefined",
                    "recipients_told": 0,
                    "created_at": "2025-01-15T10:00:00Z",
                    "next_attempt_at": "2025-01-15T10:00:00Z",
                    "delivered_at": None,
                    "failed_at": "2025-01-15T10:00:01Z",
                }
            ]
        }
    )

    id: int
    kind: str
    tenant: str | None = Field(description="Slug of the tenant the event is about")
    state: EventState
    payload: dict[str, Any]
    attempts: int
    last_error: str | None
    recipients_told: int = Field(description="Owners already sent this event's message")
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None


# -- plan changes (issue 18) --------------------------------------------------------------------

PlanChangeKind = Literal[
    "upgrade_paid", "upgrade_credited", "at_period_end", "keep_current", "immediate", "unchanged"
]


class PlanChangeRequest(BaseModel):
    """Move a tenant to another plan by the billing rule (README, "Billing rules for owners")."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"plan_code": "pro"}]}
    )

    plan_code: str = Field(pattern=PLAN_CODE_PATTERN, description="The plan to move to")


class PlanChangePublic(BaseModel):
    """What a plan change does (a quote) or did: ``upgrade_paid`` waits for the owner to pay
    ``amount_due`` at ``confirmation_url``; ``at_period_end`` starts at ``effective_at``; the
    others are done."""

    kind: PlanChangeKind
    tenant: str
    from_plan: str | None
    to_plan: str
    currency: str
    price: Decimal = Field(description="The new plan's price for one period")
    period_days: int
    credit: Decimal = Field(description="The unused paid time, in money, taken off an upgrade")
    amount_due: Decimal = Field(description="What the owner pays now (upgrade_paid only)")
    effective_at: datetime | None = Field(description="When the plan changes (null: once paid)")
    paid_until: datetime | None = Field(description="The paid time after the change")
    payment_id: UUID | None = None
    confirmation_url: str | None = Field(
        default=None, description="Where the owner pays an upgrade (YooKassa's checkout)"
    )


# -- issue 18: refunds -------------------------------------------------------------------------------


class RefundCreate(BaseModel):
    """``POST /api/v1/payments/{id}/refunds``: how much and why (the ``Idempotency-Key`` header names
    the refund: a retried request never refunds twice)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount": "300.00", "reason": "outage on 12 May"}, {}]},
    )

    amount: Decimal | None = Field(
        default=None,
        gt=0,
        max_digits=12,
        decimal_places=2,
        description="How much to refund; default: everything not yet refunded (a full refund).",
    )
    reason: str = Field(default="", max_length=250, description="Why (audit log, YooKassa).")


class RefundPublic(BaseModel):
    """A refund as the API shows it. ``effect``: what it did to the subscription (``none``,
    ``period_taken_back``, ``subscription_ended``; null until it succeeded)."""

    id: UUID
    payment_id: UUID
    amount: Decimal
    currency: str
    status: Literal["new", "pending", "succeeded", "canceled"]
    reason: str
    key: str
    provider_refund_id: str | None
    effect: str | None
    last_error: str | None
    created_at: datetime
