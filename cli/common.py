"""What every CLI command shares: settings, connections, and errors turned into one-line messages."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from fleet.db import create_pool
from fleet.errors import (
    BotfleetError,
    ConfigError,
    ConflictError,
    NotFoundError,
    ServiceUnavailable,
    ValidationError,
)
from fleet.logs import setup_logging
from fleet.secrets import SecretBox
from fleet.settings import Settings, describe_dsn, load_settings

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def run(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async command; turn platform errors into a one-line message and an exit code."""
    try:
        return asyncio.run(coro_factory())
    except (ValidationError, ConfigError) as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    except (ConflictError, NotFoundError, ServiceUnavailable, BotfleetError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def settings(*, service: bool = False) -> Settings:
    """Load settings or exit 2 naming the bad variable. One-shot commands log warnings only;
    long-running services (``service=True``) log at ``BOTFLEET_LOG_LEVEL``."""
    try:
        loaded = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    level = loaded.log_level if service or loaded.log_level == "DEBUG" else "WARNING"
    setup_logging(level, "text" if sys.stderr.isatty() else loaded.log_format)
    return loaded


@dataclass
class CommandResources:
    """Connections a command needs, opened from settings and closed on exit."""

    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    secrets: SecretBox | None
    provisioner: asyncpg.Pool | None = None  # BOTFLEET_PROVISIONER_DATABASE_URL's, when asked for

    @property
    def ddl_pool(self) -> asyncpg.Pool:
        """Where tenant roles and schemas are created and migrated: the provisioner's, else ours."""
        return self.provisioner or self.pool


@asynccontextmanager
async def open_resources(
    config: Settings,
    *,
    redis: bool = True,
    secrets: bool = True,
    pool_size: int = 4,
    provisioner: bool = False,
) -> AsyncIterator[CommandResources]:
    """``provisioner``: also a pool of the provisioning role, where one is configured (commands
    that create, migrate or drop tenant roles and schemas)."""
    box = SecretBox(config.require("master_key")) if secrets else None
    pool = await create_pool(config.require("database_url"), max_size=pool_size)
    ddl: asyncpg.Pool | None = None
    client: Any = None
    try:
        if provisioner and config.provisioner_database_url:
            ddl = await create_pool(config.provisioner_database_url, max_size=pool_size)
        if redis:
            client = await connect_redis(config.require("redis_url"))
        yield CommandResources(
            settings=config, pool=pool, redis=client, secrets=box, provisioner=ddl
        )
    finally:
        if client is not None:
            await client.aclose()
        if ddl is not None:
            await ddl.close()
        await pool.close()


async def connect_redis(url: str) -> Redis:
    """Open a Redis client and check it answers; ServiceUnavailable names host and port only."""
    client = Redis.from_url(url, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ServiceUnavailable(
            f"cannot connect to Redis at {describe_dsn(url)}: {reason}"
        ) from exc
    return client
