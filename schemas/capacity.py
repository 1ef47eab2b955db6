"""What the deploy worker measures of the live tenant bots, for operators (``botfleet fleet status``
and the API's ``/metrics``): written by the worker's reconciler into Redis, read by the others.

The worker is the one process that knows the bots (it forked them, or it talks to the engine that
runs them); the control plane and the CLI never reach into ``/proc`` or the engine themselves.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class BotUsage(BaseModel):
    """One live tenant bot: where it runs and the memory it holds (None: the runtime cannot tell)."""

    model_config = ConfigDict(frozen=True)

    slug: str
    host: str
    rss_bytes: int | None = Field(default=None, ge=0)
    uss_bytes: int | None = Field(default=None, ge=0)


class PoolerFigures(BaseModel):
    """The tenants' PgBouncer right now (its admin console's ``SHOW POOLS``): the bots' client
    connections, its server connections to PostgreSQL against its bound, and clients waiting."""

    model_config = ConfigDict(frozen=True)

    client_connections: int = Field(ge=0)
    server_connections: int = Field(ge=0)
    waiting_clients: int = Field(ge=0)
    server_connections_max: int = Field(ge=0, description="max_db_connections (0: unbounded).")


class MemoryMergeFigures(BaseModel):
    """Kernel same-page merging (KSM) on the worker's host: ``/sys/kernel/mm/ksm``'s counters and
    whether the bots are opted in (``BOTFLEET_MEMORY_MERGE``; the process runtime's fork server)."""

    model_config = ConfigDict(frozen=True)

    host: str
    bots_opted_in: bool | None = Field(
        default=None, description="The runtime's bots are opted in (None: the runtime cannot tell)."
    )
    reason: str = Field(default="", description="Why they are, or are not.")
    ksmd_running: bool
    pages_shared: int = Field(ge=0, description="Merged pages kept (once each).")
    pages_sharing: int = Field(ge=0, description="Pages mapped onto them: what merging saves.")
    general_profit_bytes: int = Field(description="Bytes saved less KSM's own bookkeeping.")


class CapacitySnapshot(BaseModel):
    """One measurement of every live bot of an installation, by one worker's runtime."""

    model_config = ConfigDict(frozen=True)

    runtime: str
    measured_at: datetime
    pool_max: int = Field(ge=1, description="Connections one tenant bot's pool opens at most.")
    bots: list[BotUsage]
    pooler: PoolerFigures | None = Field(
        default=None, description="The tenants' PgBouncer (None: bots connect directly)."
    )
    memory_merge: MemoryMergeFigures | None = Field(
        default=None, description="KSM on the worker's host (None: the kernel has none)."
    )

    def live_per_host(self) -> dict[str, int]:
        """Live bots by host, hosts sorted by name."""
        return dict(sorted(Counter(bot.host for bot in self.bots).items()))

    def pooled_max(self) -> int:
        """The connections the live bots' pools could open at most (pool max x live bots)."""
        return self.pool_max * len(self.bots)

    def by_slug(self) -> dict[str, BotUsage]:
        return {bot.slug: bot for bot in self.bots}
