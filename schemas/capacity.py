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

    def live_per_host(self) -> dict[str, int]:
        """Live bots by host, hosts sorted by name."""
        return dict(sorted(Counter(bot.host for bot in self.bots).items()))

    def pooled_max(self) -> int:
        """The connections the live bots' pools could open at most (pool max x live bots)."""
        return self.pool_max * len(self.bots)

    def by_slug(self) -> dict[str, BotUsage]:
        return {bot.slug: bot for bot in self.bots}
