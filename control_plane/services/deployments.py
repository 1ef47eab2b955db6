"""Deployments as the deploy worker last recorded them, and the logs of a tenant's bot.

The control plane never imports the deploy worker (they are sibling processes). Logs come through a
:class:`LogSource` handed to the app: anything with the runtime's ``logs(slug, tail=...)`` method —
``botfleet api`` passes the configured runtime of the deploy worker. Without one, asking for logs is
a clear 503, never an empty answer that would look like a silent bot.
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Protocol, runtime_checkable

import asyncpg

from fleet.errors import BotfleetError, NotFoundError
from fleet.logs import mask
from fleet.repositories.admin_views import AdminViews
from fleet.repositories.tenants import Tenant, TenantRepository


@runtime_checkable
class LogSource(Protocol):
    """Where the bots' output can be read: a runtime of the deploy worker, for example."""

    kind: str

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines the tenant's bot wrote."""
        ...


class LogsUnavailable(BotfleetError):
    """No log source is configured, or it did not answer (HTTP 503)."""

    status = 503


class DeploymentService:
    """Reads deployments and tails the bots' logs."""

    def __init__(
        self, *, pool: asyncpg.Pool, logs: LogSource | None = None, logs_timeout_s: float = 10.0
    ) -> None:
        self._pool = pool
        self._logs = logs
        self._logs_timeout_s = logs_timeout_s

    async def list(
        self, *, status: str | None = None, after_tenant_id: int = 0, limit: int = 50
    ) -> list[asyncpg.Record]:
        return await AdminViews(self._pool).deployments(
            status=status, after_tenant_id=after_tenant_id, limit=limit
        )

    async def get(self, slug: str) -> asyncpg.Record:
        tenant = await self._tenant(slug)
        deployment = await AdminViews(self._pool).deployment(tenant.id)
        if deployment is None:
            raise NotFoundError(
                f"tenant {slug!r} has no deployment yet; the deploy worker creates it when it "
                "provisions the tenant (see the tenant's jobs)"
            )
        return deployment

    async def tail(self, slug: str, *, lines: int) -> tuple[str, builtins.list[str]]:
        """``(source kind, last lines)`` of the tenant's bot, masked like the logs."""
        await self._tenant(slug)
        if self._logs is None:
            raise LogsUnavailable(
                "no log source is configured in this API process; start it with `botfleet api`, "
                "which reads logs through the deploy worker's runtime"
            )
        try:
            async with asyncio.timeout(self._logs_timeout_s):
                text = await self._logs.logs(slug, tail=lines)
        except TimeoutError as exc:
            raise LogsUnavailable(f"the {self._logs.kind} runtime did not answer in time") from exc
        return self._logs.kind, [mask(line) for line in text.splitlines()[-lines:]]

    async def _tenant(self, slug: str) -> Tenant:
        tenant = await TenantRepository(self._pool).get(slug)
        if tenant is None:
            raise NotFoundError(f"tenant {slug!r} does not exist")
        return tenant
