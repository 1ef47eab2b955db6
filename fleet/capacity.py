"""Capacity as operators see it: live bots per host, memory per bot, and PostgreSQL server
connections against what the tenants' pools could open.

The deploy worker's reconciler measures the bots each pass and stores a :class:`CapacitySnapshot`
under the installation's platform key ``<prefix>:bf:capacity`` (with a TTL of a few passes, so a
worker that stopped measuring leaves no stale figures behind); ``botfleet fleet status`` and the
API's ``/metrics`` read it here, together with the server's connection counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from pydantic import ValidationError
from redis.asyncio import Redis

from fleet.identifiers import platform_redis_key
from fleet.repositories.server_activity import ServerConnections, server_connections
from schemas.capacity import CapacitySnapshot

log = logging.getLogger(__name__)

CAPACITY_KEY = "capacity"


def capacity_key(role_prefix: str) -> str:
    """The Redis key holding the installation's latest :class:`CapacitySnapshot`."""
    return platform_redis_key(role_prefix, CAPACITY_KEY)


async def store_snapshot(
    redis: Redis, snapshot: CapacitySnapshot, *, role_prefix: str, ttl_s: float
) -> None:
    """Replace the installation's snapshot; it expires after ``ttl_s`` unless measured again."""
    await redis.set(
        capacity_key(role_prefix), snapshot.model_dump_json(), px=max(1000, int(ttl_s * 1000))
    )


async def load_snapshot(redis: Redis, *, role_prefix: str) -> CapacitySnapshot | None:
    """The latest snapshot, or None when no worker measured lately (or it cannot be read)."""
    raw = await redis.get(capacity_key(role_prefix))
    if raw is None:
        return None
    try:
        return CapacitySnapshot.model_validate_json(raw)
    except ValidationError:
        log.warning("unreadable capacity snapshot in Redis; ignored")
        return None


@dataclass(frozen=True)
class Capacity:
    """What ``fleet status`` and ``/metrics`` show: the worker's snapshot (None: none lately) and
    the server's connections."""

    snapshot: CapacitySnapshot | None
    connections: ServerConnections

    def age_s(self, now: datetime | None = None) -> float | None:
        if self.snapshot is None:
            return None
        moment = now or datetime.now(UTC)
        return max(0.0, (moment - self.snapshot.measured_at).total_seconds())

    def as_dict(self) -> dict[str, object]:
        snapshot = self.snapshot
        return {
            "measured_at": snapshot.measured_at.isoformat() if snapshot else None,
            "live_per_host": snapshot.live_per_host() if snapshot else {},
            "postgres": {
                "tenant_connections": self.connections.tenants,
                "server_connections": self.connections.total,
                "max_connections": self.connections.max_connections,
                "pool_max_per_tenant": snapshot.pool_max if snapshot else None,
                "pooled_max": snapshot.pooled_max() if snapshot else None,
            },
            "pooler": (
                snapshot.pooler.model_dump() if snapshot and snapshot.pooler is not None else None
            ),
            "memory_merge": (
                snapshot.memory_merge.model_dump()
                if snapshot and snapshot.memory_merge is not None
                else None
            ),
        }


async def read_capacity(pool: asyncpg.Pool, redis: Redis | None, *, role_prefix: str) -> Capacity:
    """The worker's latest snapshot (none without ``redis``) and the server's connections now."""
    snapshot = None if redis is None else await load_snapshot(redis, role_prefix=role_prefix)
    connections = await server_connections(pool, role_prefix=role_prefix)
    return Capacity(snapshot=snapshot, connections=connections)
