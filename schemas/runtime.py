"""The tenant runtime contract: everything a tenant bot process gets, and only through its environment.

The deploy worker builds it (:meth:`TenantRuntime.to_env`) and the tenant bot reads it
(:meth:`TenantRuntime.from_env`); the bot knows nothing else of the platform. A missing or invalid
variable stops start-up with a message naming it.

Secrets (:data:`SECRET_FIELDS`: the bot token, the database and Redis URLs with their passwords, the
webhook secret) may instead be given as files: ``BOTFLEET_TENANT_<NAME>_FILE`` names a file holding
the value. Container runtimes use only that form, so ``docker inspect`` and ``ps`` never show them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from schemas.tenants import SLUG_PATTERN, check_bot_token, check_timezone

ENV_PREFIX = "BOTFLEET_TENANT_"
FILE_SUFFIX = "_FILE"
HEARTBEAT_TTL_SECONDS = 30
# A tenant bot's PostgreSQL pool opens at most this many connections unless the contract's
# ``db_pool_max`` (BOTFLEET_TENANT_DB_POOL_MAX, from the platform's BOTFLEET_TENANT_DB_POOL_MAX) says.
TENANT_DB_POOL_MAX_DEFAULT = 5
# Fields whose values are secrets: delivered as files by the container runtimes.
SECRET_FIELDS: tuple[str, ...] = ("bot_token", "database_url", "redis_url", "webhook_secret")


def env_name(field: str) -> str:
    """The environment variable of a contract field (``bot_token`` -> ``BOTFLEET_TENANT_BOT_TOKEN``)."""
    return ENV_PREFIX + field.upper()


def secret_env_names() -> frozenset[str]:
    """The variables that hold secrets (each also readable from ``<name>_FILE``)."""
    return frozenset(env_name(field) for field in SECRET_FIELDS)


class RuntimeContractError(ValueError):
    """The environment does not describe a valid tenant runtime; the message names the variable."""


class TenantRuntime(BaseModel):
    """One tenant bot's configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str = Field(pattern=SLUG_PATTERN)
    bot_token: SecretStr
    database_url: SecretStr = Field(description="postgresql:// URL logging in as the tenant's role")
    redis_url: SecretStr = Field(description="redis:// URL logging in as the tenant's ACL user")
    redis_prefix: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,15}:t:[a-z][a-z0-9_]{2,30}:$",
        description="Every key of the tenant starts with it: <installation>:t:<slug>:",
    )
    owner_ids: list[int] = Field(min_length=1)
    locale: Literal["ru", "en"] = "ru"
    timezone: str = "Europe/Moscow"
    display_name: str = ""
    telegram_api_base: str | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    health_port: int | None = Field(default=None, ge=1, le=65535)
    # PostgreSQL pool tuning (None: the bot's defaults, tenant_bot.resources). Left out of the
    # environment when unset, so existing runtime specs (and their hashes) do not change.
    db_pool_max: int | None = Field(default=None, ge=1, le=50)
    db_idle_seconds: float | None = Field(default=None, gt=0, le=3600)
    db_acquire_timeout: float | None = Field(default=None, gt=0, le=120)
    # database_url reaches PostgreSQL through a transaction pooler (PgBouncer < 1.21 keeps no
    # prepared statement across transactions): the bot turns asyncpg's statement cache off.
    db_transaction_pooler: bool | None = None
    # A file the bot touches whenever it writes a healthy heartbeat (and removes when unhealthy or
    # stopping): the docker runtime's health check tests its age with /bin/sh instead of starting
    # an interpreter (tenant_bot.heartbeat). Set by the runtime, not the spec builder.
    heartbeat_file: str | None = Field(default=None, pattern=r"^/")

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_bot_token(value.get_secret_value()))

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        if urlsplit(value.get_secret_value()).scheme not in ("postgres", "postgresql"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr) -> SecretStr:
        if urlsplit(value.get_secret_value()).scheme not in ("redis", "rediss"):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("telegram_api_base", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def heartbeat_key(self) -> str:
        return f"{self.redis_prefix}heartbeat"

    def to_env(self) -> dict[str, str]:
        """The environment variables that describe this runtime (secrets included: for the runtime
        spec only, never for logs)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            env[ENV_PREFIX + name.upper()] = str(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TenantRuntime:
        """Read the contract from ``environ`` (default ``os.environ``); raise
        :class:`RuntimeContractError` naming every missing or invalid variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name in cls.model_fields:
            var = env_name(name)
            raw = environ.get(var)
            if (raw is None or raw == "") and name in SECRET_FIELDS:
                raw = _read_secret_file(var + FILE_SUFFIX, environ.get(var + FILE_SUFFIX), problems)
            if raw is None or raw == "":
                continue
            values[name] = [v for v in raw.split(",") if v.strip()] if name == "owner_ids" else raw
        if problems:
            raise RuntimeContractError("; ".join(problems))
        try:
            return cls(**values)
        except ValidationError as exc:
            for error in exc.errors():
                var = ENV_PREFIX + str(error["loc"][0]).upper() if error["loc"] else "?"
                reason = "is required" if error["type"] == "missing" else error["msg"]
                problems.append(f"{var} {str(reason).removeprefix('Value error, ')}")
            raise RuntimeContractError("; ".join(problems)) from None


def _read_secret_file(var: str, path: str | None, problems: list[str]) -> str | None:
    """The content of the secret file ``path`` names (one trailing newline dropped); a problem, never
    the content, is recorded when it cannot be read."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read()
    except OSError as exc:
        problems.append(
            f"{var} names a file that cannot be read ({exc.strerror or type(exc).__name__})"
        )
        return None
    return value[:-1] if value.endswith("\n") else value
