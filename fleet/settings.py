"""Platform settings, read from the environment (prefix ``BOTFLEET_``), a ``.env`` file, and
``BOTFLEET_<NAME>_FILE`` files for secrets.

Errors name the variable and show what a valid value looks like; they never echo the value itself,
since it may hold a password.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fleet.errors import ConfigError

ENV_PREFIX = "BOTFLEET_"

EXAMPLES: dict[str, str] = {
    "database_url": "postgresql://botfleet:secret@127.0.0.1:5432/botfleet",
    "redis_url": "redis://:secret@127.0.0.1:6379/0",
    "master_key": "the output of `botfleet keygen` (44 characters of URL-safe base64)",
    "tenant_role_prefix": "tenant_",
    "telegram_api_base": "http://127.0.0.1:8081 (empty for the real Telegram)",
    "yookassa_shop_id": "123456 (the shop id from the YooKassa dashboard)",
    "yookassa_secret_key": "live_... or test_... (the shop's secret key)",
    "yookassa_return_url": "https://t.me/your_sales_bot (where the buyer lands after paying)",
    "sales_bot_token": "123456789:AAE... (the sales bot's token from @BotFather)",
}

# YooKassa's published notification networks (the SDK's ``SecurityHelper.YOOKASSA_NETWORKS``),
# copied so the default needs no import of the synchronous SDK at settings time.
YOOKASSA_NETWORKS: tuple[str, ...] = (
    "77.75.153.0/25",
    "77.75.156.11",
    "77.75.156.35",
    "77.75.154.128/25",
    "185.71.76.0/27",
    "185.71.77.0/27",
    "2a02:5180:0:1509::/64",
    "2a02:5180:0:2655::/64",
    "2a02:5180:0:1533::/64",
    "2a02:5180:0:2669::/64",
)

# What the process runtime's fork server imports by name, in its own process (the deploy worker never
# imports the tenant bot): the only place such module names are written as strings. The defaults of
# BOTFLEET_PROCESS_PRELOAD and BOTFLEET_TENANT_ENTRYPOINT; tests/test_architecture.py checks that each
# names a module (and function) that exists and that no other string names one.
# pkg.*: it and all its modules. Then what the tenant bot imports only for a rare feature (the XLSX
# export, QR codes, the payment token's key, an HTTP server for webhook mode or a health port): a
# standalone bot keeps it out of its memory (tests/tenant_bot/test_idle_footprint.py checks), the
# forked bots share one copy.
FORKSERVER_PRELOAD: tuple[str, ...] = (
    "aiogram",
    "tenant_bot.*",
    "openpyxl",
    "segno",
    "kit.secrets",
    "aiohttp.web",
    "aiogram.webhook.aiohttp_server",
)
TENANT_BOT_WARM_UP = "tenant_bot.app:warm_up"  # run once after the preloads, before gc.freeze()
TENANT_BOT_ENTRYPOINT = "tenant_bot.app:run_from_env"  # what each forked bot runs


def _split_list(value: Any) -> Any:
    """Lists in env vars: comma-separated (``a,b``) or JSON (``["a", "b"]``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class FileEnvSource(PydanticBaseSettingsSource):
    """Reads ``BOTFLEET_<NAME>_FILE``: the value of ``<name>`` is the file's content, stripped.

    This is how Docker/Kubernetes secrets are mounted; the plain variable wins when both are set.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        var = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(var)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise ConfigError(f"{var}: cannot read {path}: {exc.strerror}") from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Every setting of the platform's processes. See ``.env.example`` for documentation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `BOTFLEET_X=` in .env means "not set", as in .env.example
        extra="ignore",
    )

    database_url: str | None = None
    database_password: SecretStr | None = Field(
        default=None,
        description="Password merged into database_url (any character; the URL's own is ignored).",
    )
    provisioner_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the narrow role that creates and drops tenant roles and "
        "schemas (worker, migrate, tenant CLI); unset: database_url does everything.",
    )
    provisioner_database_password: SecretStr | None = Field(
        default=None,
        description="Password merged into provisioner_database_url (any character).",
    )
    redis_url: str | None = None
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password merged into redis_url (any character; the URL's own is ignored).",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s), comma-separated: the first encrypts, all decrypt (rotation).",
    )
    tenant_role_prefix: str = "tenant_"
    migrate_concurrency: int = Field(default=8, ge=1, le=64)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    telegram_api_base: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Health endpoint of the processes without HTTP of their own (worker, sales bot, lifecycle).
    health_host: str = Field(
        default="127.0.0.1", description="Address of /healthz, /readyz and /metrics."
    )
    health_port: int = Field(
        default=0, ge=0, le=65535, description="Port of /healthz, /readyz and /metrics; 0: off."
    )
    # control plane API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_rate_limit: str = Field(
        default="600/minute", description="Requests per API key, `limits` syntax (e.g. 10/second)."
    )
    api_key_cache_s: float = Field(
        default=5.0, ge=0, le=300, description="How long a verified API key is trusted in memory."
    )
    api_idempotency_hours: int = Field(default=24, ge=1, le=24 * 30)
    api_tenant_cache_size: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000,
        description="Tenants the API keeps in memory for GET (kept fresh by LISTEN/NOTIFY); 0: off.",
    )
    api_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body the API reads (413 beyond; chunked bodies counted too).",
    )
    webhook_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest body POST /webhooks/yookassa reads (413 beyond).",
    )
    api_auth_failure_limit: str = Field(
        default="20/minute",
        description="Failed API-key attempts per client address, `limits` syntax; then 429.",
    )
    sandbox: bool = Field(
        default=False,
        description="A sandbox installation: stand-ins (fake Telegram, fake payments) allowed.",
    )

    # Deploy worker and tenant runtimes.
    runtime: Literal["auto", "docker", "process", "swarm"] = Field(
        default="auto",
        description="Where tenant bots run; auto: docker, refused when no engine answers "
        "(process only under `botfleet up` on embedded defaults).",
    )
    tenant_image: str = Field(default="botfleet:latest", description="Image of new tenant bots.")
    tenant_command: str = Field(
        default="botfleet tenant-bot", description="Container command (docker, swarm)."
    )
    tenant_entrypoint: str = Field(
        default=TENANT_BOT_ENTRYPOINT,
        description="module:function a forked tenant bot runs (process runtime).",
    )
    tenant_network: str = Field(
        default="botfleet-tenants",
        description="Docker network of tenant containers: a named network (created as a bridge "
        "without inter-container traffic when missing; an overlay for swarm), never host.",
    )
    tenant_memory_mb: int = Field(default=384, ge=32, le=65536)
    tenant_cpus: float = Field(
        default=1.0,
        gt=0,
        le=64,
        description="CPU cap per tenant bot; below 1 its start (importing aiogram) slows in proportion.",
    )
    tenant_restart_policy: Literal["no", "on-failure", "unless-stopped", "always"] = (
        "unless-stopped"
    )
    tenant_database_host: str | None = Field(
        default=None, description="PostgreSQL host as tenant bots see it (default: database_url's)."
    )
    tenant_database_port: int | None = Field(default=None, ge=1, le=65535)
    tenant_database_pooler: bool = Field(
        default=False,
        description="tenant_database_host:port is PgBouncer in transaction mode (bots turn "
        "asyncpg's statement cache off); `botfleet up` sets it when it starts its own.",
    )
    pooler: Literal["auto", "off"] = Field(
        default="auto",
        description="`botfleet up`: auto starts an embedded PgBouncer for tenant bots when the "
        "pgbouncer binary is installed and no tenant_database_host is set; off never does.",
    )
    pooler_server_connections: int = Field(
        default=40,
        ge=2,
        le=10000,
        description="Server connections the embedded PgBouncer opens at most, all tenants together.",
    )
    pooler_pool_per_tenant: int = Field(
        default=3, ge=1, le=50, description="Server connections one tenant holds at most at once."
    )
    pooler_reserve_per_tenant: int = Field(
        default=1,
        ge=0,
        le=50,
        description="Extra server connections lent to a tenant whose clients waited 1 s (a slow "
        "export or statistics query must not hold its customers up); still within the bound.",
    )
    pooler_stats_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:port/pgbouncer of the tenants' PgBouncer admin "
        "console (a stats_users role): the worker reports its connections to `fleet status` and "
        "/metrics; `botfleet up` sets it for its own pooler.",
    )
    tenant_redis_host: str | None = Field(
        default=None, description="Redis host as tenant bots see it (default: redis_url's)."
    )
    tenant_redis_port: int | None = Field(default=None, ge=1, le=65535)
    tenant_telegram_api_base: str | None = Field(
        default=None, description="Bot API base as tenant bots see it (default: telegram_api_base)."
    )
    # What one tenant's PostgreSQL role may take (re-applied on every provision and redeploy).
    tenant_statement_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="statement_timeout of tenant roles."
    )
    tenant_idle_in_transaction_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="idle_in_transaction_session_timeout of tenant roles.",
    )
    tenant_temp_file_limit_mb: int = Field(
        default=256,
        ge=-1,
        le=1_048_576,
        description="temp_file_limit of tenant roles (-1: none; needs a superuser or SET privilege).",
    )
    tenant_connection_limit: int = Field(
        default=12, ge=2, le=1000, description="CONNECTION LIMIT of tenant roles (bot pool: 5)."
    )
    tenant_db_pool_max: int | None = Field(
        default=None, ge=1, le=50, description="Connections a tenant bot's pool opens at most (5)."
    )
    tenant_db_idle_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="A tenant bot closes a PostgreSQL connection idle this long (30).",
    )
    tenant_db_acquire_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=120,
        description="A tenant bot's request waits this long for a busy pool, then apologises (5).",
    )
    worker_concurrency: int = Field(default=8, ge=1, le=256, description="Jobs run at once.")
    worker_lease_s: float = Field(default=60.0, ge=1, le=3600)
    worker_poll_s: float = Field(default=5.0, gt=0, le=300, description="Poll when no NOTIFY.")
    worker_shutdown_s: float = Field(default=30.0, ge=0, le=3600)
    reconcile_interval_s: float = Field(default=30.0, gt=0, le=86400)
    heartbeat_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    crash_loop_restarts: int = Field(default=5, ge=1, le=1000)
    crash_loop_window_s: float = Field(default=600.0, gt=0, le=86400)
    stop_timeout_s: float = Field(default=10.0, ge=0, le=600)
    process_state_dir: str = Field(
        default=".botfleet/processes", description="Where the process runtime keeps state and logs."
    )
    process_confinement: Literal["required", "best-effort", "off"] | None = Field(
        default=None,
        description="Per-bot uid and cgroup limits for the process runtime; required: refuse to "
        "start without them; default: required, best-effort in a sandbox.",
    )
    process_uid_base: int | None = Field(
        default=None,
        ge=1000,
        le=2**32 - 65_538,
        description="First of the 65,536 uids of this installation's forked bots (default: derived "
        "from the role prefix, above 100,000,000).",
    )
    memory_merge: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Kernel same-page merging (KSM) of tenant bots' identical memory pages: the "
        "fork server opts itself and every bot in (prctl PR_SET_MEMORY_MERGE), a docker tenant "
        "bot itself; auto: when the kernel has KSM and /sys/kernel/mm/ksm/run is 1, on: always "
        "(fails where the kernel cannot), off: never.",
    )
    process_preload: str = Field(
        default=",".join(FORKSERVER_PRELOAD),
        description="Modules the process runtime's fork server imports once, comma-separated (pkg.* = the package and all its modules).",
    )

    # Billing (YooKassa) and the sales bot.
    yookassa_shop_id: str | None = None
    yookassa_secret_key: SecretStr | None = None
    yookassa_api_url: str = "https://api.yookassa.ru/v3"
    yookassa_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(YOOKASSA_NETWORKS),
        description="Networks YooKassa sends notifications from; others get 403.",
    )
    yookassa_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For names the real sender.",
    )
    yookassa_return_url: str | None = None
    yookassa_timeout_s: float = Field(default=10.0, gt=0, le=120)
    yookassa_max_attempts: int = Field(default=4, ge=1, le=10)
    yookassa_receipts: bool = Field(
        default=False,
        description="Send 54-FZ receipt data with every payment and partial refund (needs the "
        "buyer's e-mail or phone); on in production for a shop on YooKassa's 54-FZ solution.",
    )
    yookassa_vat_code: int = Field(
        default=1, ge=1, le=12, description="Receipt VAT code: 1 none, 11 VAT 22%, 12 VAT 22/122."
    )
    yookassa_tax_system_code: int | None = Field(default=None, ge=1, le=6)
    yookassa_payment_subject: Literal["service", "job", "intellectual_activity", "another"] = Field(
        default="service", description="Receipt payment_subject of a subscription."
    )
    yookassa_payment_mode: Literal["full_prepayment", "full_payment", "advance"] = Field(
        default="full_payment", description="Receipt payment_mode of a subscription."
    )
    sales_bot_token: SecretStr | None = None
    sales_support_contact: str = "@botfleet_support"
    sales_rate_limit: str = Field(default="20/10seconds", description="Per user, `limits` syntax.")
    sales_outbox_interval_s: float = Field(default=2.0, gt=0, le=300)
    billing_grace_days: int = Field(default=3, ge=0, le=90)
    billing_retention_days: int = Field(default=30, ge=1, le=3650)
    billing_deletion_warning_days: int = Field(default=7, ge=1, le=365)
    billing_reminder_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [3, 1])
    billing_autorenew_lead_hours: int = Field(default=24, ge=1, le=24 * 14)
    billing_abandoned_after_hours: int = Field(default=72, ge=1, le=24 * 90)
    billing_lifecycle_interval_s: float = Field(default=60.0, gt=0, le=86400)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, FileEnvSource(settings_cls))

    @field_validator("database_url", "provisioner_database_url")
    @classmethod
    def _check_database_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        field_name = cast(str, info.field_name)  # always set for a field validator
        password_var = f"{ENV_PREFIX}{field_name.removesuffix('_url').upper()}_PASSWORD"
        parts = _parse_url(value, password_var)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError("must be a postgresql:// URL")
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError("must name a host (or a socket folder as ?host=/run/postgresql)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = _parse_url(value, f"{ENV_PREFIX}REDIS_PASSWORD")
        if parts.scheme not in ("redis", "rediss", "unix") or (
            parts.scheme != "unix" and not parts.hostname
        ):
            raise ValueError("must be a redis:// or rediss:// URL with a host")
        return value

    @model_validator(mode="before")
    @classmethod
    def _merge_passwords(cls, data: Any) -> Any:
        """``database_password``/``redis_password`` replace the password of their URL, percent-encoded,
        so a password with any character works (the URL's own user info, up to its last ``@``, may
        then hold anything: compose writes the raw password there)."""
        if not isinstance(data, dict):
            return data
        for url_key, password_key in (
            ("database_url", "database_password"),
            ("provisioner_database_url", "provisioner_database_password"),
            ("redis_url", "redis_password"),
        ):
            url, password = data.get(url_key), data.get(password_key)
            if isinstance(password, SecretStr):
                password = password.get_secret_value()
            if isinstance(url, str) and url and isinstance(password, str) and password:
                data = {**data, url_key: _with_password(url, password)}
        return data

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        """Values copied unchanged from ``.env.example`` (or the docs' examples) are refused, except
        in a declared sandbox: a real installation would run with a secret everyone knows."""
        if self.sandbox:
            return self
        problems = [
            f"{var}: still holds a placeholder from .env.example; {todo}"
            for var, value, todo in self._secrets_to_check()
            if value and is_placeholder(value)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _secrets_to_check(self) -> list[tuple[str, str | None, str]]:
        """(variable, value, what to do) of each secret a placeholder must not stand in for."""
        random = "a long random value (e.g. `openssl rand -hex 24`)"

        def url_password(url: str | None) -> str | None:
            raw = urlsplit(url).password if url else None
            return unquote(raw) if raw else None

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        database_var = (
            "BOTFLEET_DATABASE_PASSWORD" if self.database_password else "BOTFLEET_DATABASE_URL"
        )
        redis_var = "BOTFLEET_REDIS_PASSWORD" if self.redis_password else "BOTFLEET_REDIS_URL"
        provisioner_var = (
            "BOTFLEET_PROVISIONER_DATABASE_PASSWORD"
            if self.provisioner_database_password
            else "BOTFLEET_PROVISIONER_DATABASE_URL"
        )
        return [
            (
                provisioner_var,
                url_password(self.provisioner_database_url),
                f"set POSTGRES_PROVISIONER_PASSWORD (compose) or the password to {random}",
            ),
            (
                database_var,
                url_password(self.database_url),
                f"set POSTGRES_PASSWORD (compose) or the password to {random}",
            ),
            (
                redis_var,
                url_password(self.redis_url),
                f"set REDIS_PASSWORD (compose) or the password to {random}",
            ),
            (
                "BOTFLEET_YOOKASSA_SECRET_KEY",
                secret(self.yookassa_secret_key),
                "set the shop's secret key from the YooKassa dashboard",
            ),
            (
                "BOTFLEET_SALES_BOT_TOKEN",
                secret(self.sales_bot_token),
                "set the sales bot's token from @BotFather",
            ),
        ]

    @field_validator("master_key")
    @classmethod
    def _check_master_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if is_placeholder(value.get_secret_value()):
            raise ValueError(
                "still holds a placeholder from .env.example; set it to a key of your own"
            )
        from fleet.secrets import parse_master_keys

        parse_master_keys(value.get_secret_value())  # raises ValueError with a clear message
        return value

    @field_validator("tenant_role_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        from fleet.identifiers import validate_prefix

        try:
            return validate_prefix(value)
        except Exception as exc:
            raise ValueError("must be 1-16 lowercase letters, digits or '_'") from exc

    @field_validator("telegram_api_base", "tenant_telegram_api_base")
    @classmethod
    def _check_api_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator(
        "yookassa_allowed_networks",
        "yookassa_trusted_proxies",
        "billing_reminder_days",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("yookassa_allowed_networks", "yookassa_trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"{network!r} is not an IP network; use addresses or CIDRs like 185.71.76.0/27"
                ) from None
        return value

    @field_validator("billing_reminder_days")
    @classmethod
    def _check_reminders(cls, value: list[int]) -> list[int]:
        if any(days < 1 or days > 60 for days in value):
            raise ValueError("reminder offsets are whole days between 1 and 60, e.g. 3,1")
        return sorted(set(value), reverse=True)

    @field_validator("yookassa_api_url", "yookassa_return_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("api_rate_limit")
    @classmethod
    def _check_api_rate_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("must be a rate like 600/minute or 10/second") from None
        return value

    @field_validator("api_auth_failure_limit")
    @classmethod
    def _check_auth_failure_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("must be a rate like 20/minute") from None
        return value

    def require(self, name: str) -> Any:
        """Return setting ``name`` or raise :class:`ConfigError` saying how to set it."""
        value = getattr(self, name)
        if value is None:
            var = ENV_PREFIX + name.upper()
            example = EXAMPLES.get(name, "")
            hint = f", e.g. {example}" if example else ""
            raise ConfigError(f"{var} is not set: set it (or {var}_FILE){hint}")
        return value.get_secret_value() if isinstance(value, SecretStr) else value


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning pydantic's errors into one :class:`ConfigError` per problem."""
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        problems = []
        for error in exc.errors():
            reason = str(error["msg"]).removeprefix("Value error, ")
            if not error["loc"]:  # a check across settings: its message names them
                problems.append(reason)
                continue
            name = str(error["loc"][0])
            var = ENV_PREFIX + name.upper()
            example = EXAMPLES.get(name)
            hint = f" (e.g. {example})" if example else ""
            problems.append(f"{var}: {reason}{hint}")
        raise ConfigError("; ".join(problems)) from None


PERCENT_ENCODE_HINT = (
    "cannot be parsed: percent-encode special characters of the user and password "
    "(+ -> %2B, / -> %2F, = -> %3D, # -> %23, @ -> %40, : -> %3A, % -> %25), or give the password "
    "on its own as {password_var} (any character works there)"
)

# RFC 3986 user info: unreserved, sub-delims, ':' and %XX escapes; anything else is not encoded.
_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")

# Values of .env.example and of the documentation's examples: never a real secret.
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "replace-me", "...")
_PLACEHOLDER_VALUES = frozenset({"secret", "password", "changeit", "example", "xxx"})


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is a placeholder from ``.env.example`` or the docs rather than a secret."""
    text = value.strip().lower()
    return text in _PLACEHOLDER_VALUES or any(marker in text for marker in _PLACEHOLDER_MARKERS)


def _parse_url(value: str, password_var: str) -> Any:
    """``urlsplit`` that refuses what PostgreSQL's and Redis' clients would read differently: an
    unencoded ``/ ? # @ %`` (or space) in the user info. The error never shows the value."""
    hint = PERCENT_ENCODE_HINT.format(password_var=password_var)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(hint) from None
    userinfo = parts.netloc.rpartition("@")[0]
    after = value.split("://", 1)[-1][len(parts.netloc) :]
    if (
        not _USERINFO.fullmatch(userinfo)
        or userinfo.count("@")
        or ("@" in after and "@" not in parts.netloc)
    ):
        raise ValueError(hint)
    return parts


def _with_password(url: str, password: str) -> str:
    """``url`` with its password replaced by ``password``, percent-encoded. The user info is what
    precedes the authority's last ``@`` (so a raw password already in the URL is dropped whole)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The authority ends at the first / ? # after the last @ (or at the start when there is no @).
    at = rest.rfind("@")
    host_and_more = rest[at + 1 :] if at >= 0 else rest
    userinfo = rest[:at] if at >= 0 else ""
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{quote(password, safe='')}@{host_and_more}"


def describe_dsn(url: str) -> str:
    """``host:port/db`` of a database or Redis URL, with no user or password, for error messages."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return "(a URL that cannot be parsed)"
    if not parts.hostname and "host=" in parts.query:
        socket_dir = parts.query.split("host=", 1)[1].split("&", 1)[0]
        return f"{socket_dir}{parts.path}"
    port = parts.port or (5432 if parts.scheme.startswith("postgres") else 6379)
    path = parts.path.lstrip("/")
    return f"{parts.hostname}:{port}" + (f"/{path}" if path else "")
