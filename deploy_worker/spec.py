"""The runtime spec of a tenant bot: what to run, with which environment, labels and limits.

The spec hash covers everything that shapes the running instance, so a changed image, limit or
secret yields a new hash, and the reconciler recreates instances whose ``botfleet.spec-hash`` label
differs. Secrets enter the hash only as a SHA-256 digest of their own, so a rotated password or token
still redeploys the bot while the label (visible to anyone who can ``docker inspect``) is computed from
no secret directly.

The environment holds secrets (bot token, passwords): it is excluded from ``repr`` and must never be
logged. ``env`` is the whole contract, for runtimes that hand a process its environment (process);
container runtimes put only :attr:`RuntimeSpec.public_env` in the container's environment and deliver
:attr:`RuntimeSpec.secret_env` as files (``BOTFLEET_TENANT_<NAME>_FILE``), so ``docker inspect``,
``ps`` and the engine's logs never carry them.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

from fleet.data_plane import TenantNames
from fleet.repositories.tenants import Tenant
from fleet.settings import Settings
from fleet.tenant_rows import TenantSecrets
from schemas.runtime import FILE_SUFFIX, TenantRuntime, secret_env_names

LABEL_TENANT = "botfleet.tenant"
LABEL_SPEC_HASH = "botfleet.spec-hash"
LABEL_NAMESPACE = "botfleet.namespace"
LABEL_MANAGED = "botfleet.managed-by"
MANAGED_BY = "botfleet-deploy-worker"
DEFAULT_TENANT_NETWORK = "botfleet-tenants"
# Processes (threads included) a tenant bot may have: docker's pids limit, the process runtime's cgroup.
TENANT_PIDS_LIMIT = 256
# Where container runtimes mount a tenant's secret files (read by ``BOTFLEET_TENANT_<NAME>_FILE``).
SECRETS_DIR = "/run/botfleet/secrets"


def secret_file_name(env_name: str) -> str:
    """The file a secret variable is delivered as (``BOTFLEET_TENANT_BOT_TOKEN`` -> ``bot_token``)."""
    return env_name.removeprefix("BOTFLEET_TENANT_").lower()


def file_env(spec_env: Mapping[str, str], directory: str = SECRETS_DIR) -> dict[str, str]:
    """``<NAME>_FILE`` variables pointing at the files that hold ``spec_env``'s secrets."""
    return {name + FILE_SUFFIX: f"{directory}/{secret_file_name(name)}" for name in spec_env}


def instance_name(namespace: str, slug: str) -> str:
    """The container / service / process name of a tenant bot, unique per installation."""
    return f"bf-{namespace}{slug}".replace("_", "-")


@dataclass(frozen=True)
class RuntimeSpec:
    """Everything a runtime needs to run one tenant bot."""

    slug: str
    namespace: str
    image: str
    command: tuple[str, ...]
    entrypoint: str
    env: Mapping[str, str] = field(repr=False)
    memory_mb: int = 384
    cpus: float = 0.5
    restart_policy: str = "unless-stopped"
    network: str = DEFAULT_TENANT_NETWORK
    stop_timeout: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))

    @property
    def name(self) -> str:
        return instance_name(self.namespace, self.slug)

    @property
    def public_env(self) -> dict[str, str]:
        """The environment without its secrets (what a container's environment may show)."""
        secret = secret_env_names()
        return {name: value for name, value in self.env.items() if name not in secret}

    @property
    def secret_env(self) -> dict[str, str]:
        """The secret variables only (name -> value), to be delivered as files."""
        secret = secret_env_names()
        return {name: value for name, value in self.env.items() if name in secret}

    @property
    def secrets_digest(self) -> str:
        """SHA-256 of the secrets: changes when any of them does, reveals none."""
        raw = json.dumps(self.secret_env, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(b"botfleet-tenant-secrets\0" + raw).hexdigest()

    @property
    def spec_hash(self) -> str:
        """A short, stable digest of the whole spec (secrets only through :attr:`secrets_digest`,
        so rotating one changes the hash)."""
        canonical: dict[str, Any] = {
            "slug": self.slug,
            "namespace": self.namespace,
            "image": self.image,
            "command": list(self.command),
            "entrypoint": self.entrypoint,
            "env": dict(sorted(self.public_env.items())),
            "secrets": self.secrets_digest,
            "memory_mb": self.memory_mb,
            "cpus": self.cpus,
            "restart_policy": self.restart_policy,
            "network": self.network,
        }
        raw = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_TENANT: self.slug,
            LABEL_NAMESPACE: self.namespace,
            LABEL_SPEC_HASH: self.spec_hash,
            LABEL_MANAGED: MANAGED_BY,
        }

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    @property
    def nano_cpus(self) -> int:
        return int(self.cpus * 1_000_000_000)


class SpecBuilder:
    """Builds a tenant's :class:`RuntimeSpec` from its control row, secrets and the settings."""

    def __init__(self, *, settings: Settings, namespace: str) -> None:
        self._settings = settings
        self._namespace = namespace
        database_url = urlsplit(settings.require("database_url"))
        redis_url = urlsplit(settings.require("redis_url"))
        self._pg_host = settings.tenant_database_host or database_url.hostname or "127.0.0.1"
        self._pg_port = settings.tenant_database_port or database_url.port or 5432
        self._pg_db = database_url.path.lstrip("/") or "postgres"
        self._redis_host = settings.tenant_redis_host or redis_url.hostname or "127.0.0.1"
        self._redis_port = settings.tenant_redis_port or redis_url.port or 6379
        self._redis_db = redis_url.path.lstrip("/") or "0"
        self._redis_scheme = "rediss" if redis_url.scheme == "rediss" else "redis"

    @property
    def namespace(self) -> str:
        return self._namespace

    def default_image(self) -> str:
        return self._settings.tenant_image

    def runtime_contract(
        self, tenant: Tenant, secrets: TenantSecrets, names: TenantNames
    ) -> TenantRuntime:
        """The tenant runtime contract: what the bot reads from its environment."""
        user = quote(names.role, safe="")
        database_url = (
            f"postgresql://{user}:{quote(secrets.db_password, safe='')}"
            f"@{_host(self._pg_host)}:{self._pg_port}/{quote(self._pg_db, safe='')}"
        )
        redis_url = (
            f"{self._redis_scheme}://{quote(names.redis_user, safe='')}:"
            f"{quote(secrets.redis_password, safe='')}@{_host(self._redis_host)}:"
            f"{self._redis_port}/{self._redis_db}"
        )
        return TenantRuntime(
            slug=tenant.slug,
            bot_token=secrets.bot_token,
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=names.redis_prefix,
            owner_ids=list(tenant.owner_telegram_ids),
            locale=tenant.locale,
            timezone=tenant.timezone,
            display_name=tenant.display_name,
            telegram_api_base=(
                self._settings.tenant_telegram_api_base or self._settings.telegram_api_base
            ),
            db_pool_max=self._settings.tenant_db_pool_max,
            db_idle_seconds=self._settings.tenant_db_idle_s,
            db_acquire_timeout=self._settings.tenant_db_acquire_timeout_s,
            db_transaction_pooler=True if self._settings.tenant_database_pooler else None,
        )

    def build(
        self,
        tenant: Tenant,
        secrets: TenantSecrets,
        names: TenantNames,
        *,
        image: str | None = None,
    ) -> RuntimeSpec:
        """The spec for ``tenant``; ``image`` overrides the default (a pinned or upgraded image)."""
        settings = self._settings
        env = self.runtime_contract(tenant, secrets, names).to_env()
        env["BOTFLEET_LOG_LEVEL"] = settings.log_level
        if settings.memory_merge != "auto":  # the bot's default: unset keeps existing specs' hashes
            env["BOTFLEET_MEMORY_MERGE"] = settings.memory_merge
        return RuntimeSpec(
            slug=tenant.slug,
            namespace=self._namespace,
            image=image or settings.tenant_image,
            command=tuple(shlex.split(settings.tenant_command)),
            entrypoint=settings.tenant_entrypoint,
            env=env,
            memory_mb=settings.tenant_memory_mb,
            cpus=settings.tenant_cpus,
            restart_policy=settings.tenant_restart_policy,
            network=settings.tenant_network,
            stop_timeout=settings.stop_timeout_s,
        )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
