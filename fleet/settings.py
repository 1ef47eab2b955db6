"""Platform settings, read from the environment (prefix ``BOTFLEET_``), a ``.env`` file, and
``BOTFLEET_<NAME>_FILE`` files for secrets.

Errors name the variable and show what a valid value looks like; they never echo the value itself,
since it may hold a password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
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
}


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
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str | None = None
    redis_url: str | None = None
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

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise ValueError("must be a postgresql:// URL with a host")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix") or (
            parts.scheme != "unix" and not parts.hostname
        ):
            raise ValueError("must be a redis:// or rediss:// URL with a host")
        return value

    @field_validator("master_key")
    @classmethod
    def _check_master_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
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

    @field_validator("telegram_api_base")
    @classmethod
    def _check_api_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

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
            name = str(error["loc"][0]) if error["loc"] else "?"
            var = ENV_PREFIX + name.upper()
            reason = str(error["msg"]).removeprefix("Value error, ")
            example = EXAMPLES.get(name)
            hint = f" (e.g. {example})" if example else ""
            problems.append(f"{var}: {reason}{hint}")
        raise ConfigError("; ".join(problems)) from None


def describe_dsn(url: str) -> str:
    """``host:port/db`` of a database or Redis URL, with no user or password, for error messages."""
    parts = urlsplit(url)
    port = parts.port or (5432 if parts.scheme.startswith("postgres") else 6379)
    path = parts.path.lstrip("/")
    return f"{parts.hostname}:{port}" + (f"/{path}" if path else "")
