"""Prometheus metrics of one API app, in the app's own registry (two apps in one process, as in tests,
never share or clash).

- ``botfleet_api_requests_total{method,route,status}`` and
  ``botfleet_api_request_duration_seconds{method,route,status}``: by route *template*
  (``/api/v1/tenants/{slug}``), so cardinality stays bounded; unmatched paths count as ``<unmatched>``.
- ``botfleet_jobs{state}`` and ``botfleet_tenants{status}``: refreshed from PostgreSQL on each scrape.
- ``botfleet_api_tenant_cache_*``: whether the tenant cache is serving (its LISTEN connection is up),
  its entries, hits, misses and invalidations; read from the cache on each scrape.
- ``botfleet_events_pending``, ``botfleet_events_oldest_pending_age_seconds`` and
  ``botfleet_events_failed``: the owner-notice outbox (events the sales bot delivers), refreshed on
  each scrape: a backlog that ages means owners are not being told.
- ``botfleet_subscriptions_set_aside``: subscriptions the lifecycle set aside (``botfleet billing
  failures``), refreshed on each scrape.
- ``botfleet_refunds_unfinished``: refunds YooKassa never answered for 10 minutes (their amount stays
  reserved until they are run again with the same key), refreshed on each scrape.
- ``botfleet_tenant_bots_unhealthy`` and ``botfleet_tenant_items_set_aside{kind}``: what the live
  tenant bots' heartbeats say (loops failing or stuck; messages set aside), refreshed on each scrape.
- ``botfleet_tenant_bots_unhealthy``, ``botfleet_tenant_items_set_aside{kind}`` and
  ``botfleet_tenant_loop_restarts{loop}``: what the live tenant bots' heartbeats say (loops failing
  or stuck; messages set aside; crashes of each supervised loop, restarted), refreshed on each scrape.
- ``botfleet_tenant_storage_unavailable{cause}``: requests of the live tenant bots that found the
  database unavailable (``database``: PostgreSQL itself, ``pooler``: PgBouncer said so, ``timeout``)
  or Redis (``redis``), from their heartbeats, refreshed on each scrape.
- ``botfleet_tenants_without_heartbeat``: active tenants that should run but whose bot's heartbeat
  key is missing in Redis (dead or wedged bots), refreshed on each scrape.
- ``botfleet_tenant_bots_live{host}``, ``botfleet_tenant_bot_memory_bytes{tenant,host,kind}`` (kind
  ``rss``, and ``uss`` on the process runtime) and ``botfleet_capacity_measurement_age_seconds``:
  what the deploy worker last measured of the live bots (:mod:`fleet.capacity`, from Redis);
  ``botfleet_postgres_tenant_connections``, ``botfleet_postgres_server_connections``,
  ``botfleet_postgres_max_connections`` and ``botfleet_tenant_pools_max_connections`` (pool max x
  live bots, what the pools could open at most): the server's connections against the pooled bound;
  refreshed on each scrape. Behind a PgBouncer (the worker reads its admin console,
  :mod:`fleet.pooler_stats`) the pooled bound is the pooler's ``max_db_connections`` instead, and
  ``botfleet_pooler_client_connections``, ``botfleet_pooler_server_connections``,
  ``botfleet_pooler_server_connections_max`` and ``botfleet_pooler_waiting_clients`` show it (-1
  without a pooler).
- ``botfleet_ksm_pages{host,kind}`` (kind ``shared``: merged pages kept once, ``sharing``: pages
  mapped onto them), ``botfleet_ksm_general_profit_bytes{host}``, ``botfleet_ksm_running{host}`` and
  ``botfleet_tenant_memory_merge{host}`` (1: the bots are opted in, 0: not, -1: the runtime cannot
  tell): kernel same-page merging on the worker's host, as it last measured (``kit/memory_merge.py``).
- ``botfleet_loop_restarts_total``, ``botfleet_loop_healthy`` and ``botfleet_loop_seconds_since_beat``
  (``{process,loop}``): the supervised background loops of this process (:mod:`kit.metrics`).
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.tenant_cache import TenantCache
from fleet.capacity import Capacity, read_capacity
from fleet.identifiers import redis_prefix
from fleet.repositories import refunds as refund_repo
from fleet.repositories import subscriptions as subscription_repo
from fleet.repositories.admin_views import AdminViews
from fleet.repositories.events import outbox_stats
from fleet.repositories.tenants import TenantRepository
from kit.metrics import SupervisorCollector
from kit.supervisor import Supervisor
from schemas.events import OWNER_EVENT_KINDS

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
JOB_STATES = ("queued", "running", "done", "dead", "cancelled")
TENANT_STATUSES = (
    "new",
    "provisioning",
    "active",
    "suspended",
    "error",
    "degraded",
    "deleting",
    "deleted",
)
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The metrics of one app and how to refresh and render them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "botfleet_api_requests_total",
            "API requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "botfleet_api_request_duration_seconds",
            "API request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.jobs = Gauge(
            "botfleet_jobs", "Deploy jobs by state", ["state"], registry=self.registry
        )
        self.tenants = Gauge(
            "botfleet_tenants", "Tenants by status", ["status"], registry=self.registry
        )
        self.events_pending = Gauge(
            "botfleet_events_pending",
            "Owner notices waiting to be delivered by the sales bot",
            registry=self.registry,
        )
        self.events_oldest_age = Gauge(
            "botfleet_events_oldest_pending_age_seconds",
            "Age of the oldest owner notice still waiting to be delivered (0 when none)",
            registry=self.registry,
        )
        self.events_failed = Gauge(
            "botfleet_events_failed",
            "Owner notices set aside as failed (botfleet events list --failed)",
            registry=self.registry,
        )
        self.subscriptions_set_aside = Gauge(
            "botfleet_subscriptions_set_aside",
            "Subscriptions the lifecycle set aside (a step failed on them); see botfleet billing failures",
            registry=self.registry,
        )
        self.refunds_unfinished = Gauge(
            "botfleet_refunds_unfinished",
            "Refunds YooKassa never answered for 10 minutes; rerun them with the same key",
            registry=self.registry,
        )
        self.bots_unhealthy = Gauge(
            "botfleet_tenant_bots_unhealthy",
            "Live tenant bots whose heartbeat says a background loop is failing or stuck",
            registry=self.registry,
        )
        self.items_set_aside = Gauge(
            "botfleet_tenant_items_set_aside",
            "Messages the live tenant bots set aside since they started (reminders, completion cards,"
            " waitlist and owner notices), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.tenant_loop_restarts = Gauge(
            "botfleet_tenant_loop_restarts",
            "Crashes (each restarted) of the live tenant bots' supervised loops since they started:"
            " background, reviews, mailings, heartbeat",
            ["loop"],
            registry=self.registry,
        )
        self.storage_unavailable = Gauge(
            "botfleet_tenant_storage_unavailable",
            "Requests of the live tenant bots that found the database unavailable since they"
            " started, by cause: database (PostgreSQL itself), pooler (PgBouncer said so), timeout",
            ["cause"],
            registry=self.registry,
        )
        self.without_heartbeat = Gauge(
            "botfleet_tenants_without_heartbeat",
            "Active tenants that should run but whose bot has no heartbeat in Redis",
            registry=self.registry,
        )
        self.bots_live = Gauge(
            "botfleet_tenant_bots_live",
            "Live tenant bots by host, as the deploy worker last measured them",
            ["host"],
            registry=self.registry,
        )
        self.bot_memory = Gauge(
            "botfleet_tenant_bot_memory_bytes",
            "Memory of each live tenant bot as the deploy worker last measured it: rss (docker:"
            " container usage less inactive page cache) and, on the process runtime, uss",
            ["tenant", "host", "kind"],
            registry=self.registry,
        )
        self.capacity_age = Gauge(
            "botfleet_capacity_measurement_age_seconds",
            "Seconds since the deploy worker last measured the live bots (-1: no measurement lately)",
            registry=self.registry,
        )
        self.ksm_pages = Gauge(
            "botfleet_ksm_pages",
            "Kernel same-page merging on the worker's host: shared (merged pages kept once) and"
            " sharing (pages mapped onto them, i.e. saved)",
            ["host", "kind"],
            registry=self.registry,
        )
        self.ksm_profit = Gauge(
            "botfleet_ksm_general_profit_bytes",
            "Bytes kernel same-page merging saves on the worker's host, less its own bookkeeping",
            ["host"],
            registry=self.registry,
        )
        self.ksm_running = Gauge(
            "botfleet_ksm_running",
            "1 while ksmd runs on the worker's host (/sys/kernel/mm/ksm/run)",
            ["host"],
            registry=self.registry,
        )
        self.memory_merge = Gauge(
            "botfleet_tenant_memory_merge",
            "1: the host's tenant bots are opted into same-page merging, 0: not, -1: unknown",
            ["host"],
            registry=self.registry,
        )
        self.pg_tenant_connections = Gauge(
            "botfleet_postgres_tenant_connections",
            "PostgreSQL connections of this installation's tenant roles",
            registry=self.registry,
        )
        self.pg_server_connections = Gauge(
            "botfleet_postgres_server_connections",
            "PostgreSQL client connections of the whole server (every role and database)",
            registry=self.registry,
        )
        self.pg_max_connections = Gauge(
            "botfleet_postgres_max_connections",
            "PostgreSQL's max_connections",
            registry=self.registry,
        )
        self.pools_max = Gauge(
            "botfleet_tenant_pools_max_connections",
            "Connections the live tenant bots' pools could open at most (pool max x live bots)",
            registry=self.registry,
        )
        self.pooler_clients = Gauge(
            "botfleet_pooler_client_connections",
            "Tenant bots' client connections to their PgBouncer, waiting ones included"
            " (-1: bots connect directly, or no measurement lately)",
            registry=self.registry,
        )
        self.pooler_servers = Gauge(
            "botfleet_pooler_server_connections",
            "PgBouncer's server connections to PostgreSQL for tenant bots (-1: no pooler measured)",
            registry=self.registry,
        )
        self.pooler_servers_max = Gauge(
            "botfleet_pooler_server_connections_max",
            "PgBouncer's bound on its server connections, max_db_connections (-1: no pooler"
            " measured; 0: unbounded)",
            registry=self.registry,
        )
        self.pooler_waiting = Gauge(
            "botfleet_pooler_waiting_clients",
            "Tenant bots' clients queued inside PgBouncer for a server connection (-1: no pooler"
            " measured)",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.scrape_errors = Counter(
            "botfleet_metrics_refresh_errors_total",
            "Scrapes whose job/tenant counts could not be refreshed (stale values served)",
            registry=self.registry,
        )

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            # The label sets are few (route templates x methods x statuses): keep their children
            # instead of looking them up (under a lock) twice per request.
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_tenant_cache(self, cache: TenantCache[Any]) -> None:
        self.registry.register(_TenantCacheCollector(cache))

    def watch_supervisor(self, supervisor: Supervisor) -> Callable[[], None]:
        """Export ``supervisor``'s loops; returns what stops exporting them."""
        collector = SupervisorCollector(supervisor)
        self.registry.register(collector)
        return lambda: self.registry.unregister(collector)

    async def refresh(
        self, pool: asyncpg.Pool, *, redis: Redis | None = None, role_prefix: str = "tenant_"
    ) -> None:
        """Read job, tenant and outbox counts (and, given ``redis``, missing heartbeats of the
        installation with ``role_prefix``); on failure keep the last values and count the error."""
        try:
            views = AdminViews(pool)
            jobs = await views.job_counts()
            tenants = await views.tenant_counts()
            outbox = await outbox_stats(pool, kinds=OWNER_EVENT_KINDS)
            set_aside = await subscription_repo.count_set_aside(pool)
            unfinished_refunds = await refund_repo.count_unfinished(pool)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            self.scrape_errors.inc()
            log.warning("metrics refresh failed", extra={"error": str(exc)})
            return
        for state in (*JOB_STATES, *jobs.keys() - set(JOB_STATES)):
            self.jobs.labels(state).set(jobs.get(state, 0))
        for status in (*TENANT_STATUSES, *tenants.keys() - set(TENANT_STATUSES)):
            self.tenants.labels(status).set(tenants.get(status, 0))
        self.events_pending.set(outbox["pending"])
        self.events_oldest_age.set(outbox["oldest_pending_age_seconds"])
        self.events_failed.set(outbox["failed"])
        self.subscriptions_set_aside.set(set_aside)
        self.refunds_unfinished.set(unfinished_refunds)
        try:
            self._show_capacity(await read_capacity(pool, redis, role_prefix=role_prefix))
        except (RedisError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            self.scrape_errors.inc()
            log.warning("capacity read failed", extra={"error": str(exc)})
        if redis is None:
            return
        try:
            beats = await _heartbeats(pool, redis, role_prefix=role_prefix)
            self.without_heartbeat.set(beats.missing)
            self.bots_unhealthy.set(beats.unhealthy)
            self.items_set_aside.clear()
            for kind, count in beats.set_aside.items():
                self.items_set_aside.labels(kind).set(count)
            self.tenant_loop_restarts.clear()
            for loop, count in beats.loop_restarts.items():
                self.tenant_loop_restarts.labels(loop).set(count)
            self.storage_unavailable.clear()
            for cause, count in beats.storage_unavailable.items():
                self.storage_unavailable.labels(cause).set(count)
        except (RedisError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            self.scrape_errors.inc()
            log.warning("heartbeat count failed", extra={"error": str(exc)})

    def _show_capacity(self, capacity: Capacity) -> None:
        connections = capacity.connections
        self.pg_tenant_connections.set(connections.tenants)
        self.pg_server_connections.set(connections.total)
        self.pg_max_connections.set(connections.max_connections)
        self.bots_live.clear()
        self.bot_memory.clear()
        for gauge in (self.ksm_pages, self.ksm_profit, self.ksm_running, self.memory_merge):
            gauge.clear()
        snapshot = capacity.snapshot
        merging = snapshot.memory_merge if snapshot is not None else None
        if merging is not None:
            self.ksm_pages.labels(merging.host, "shared").set(merging.pages_shared)
            self.ksm_pages.labels(merging.host, "sharing").set(merging.pages_sharing)
            self.ksm_profit.labels(merging.host).set(merging.general_profit_bytes)
            self.ksm_running.labels(merging.host).set(int(merging.ksmd_running))
            opted = merging.bots_opted_in
            self.memory_merge.labels(merging.host).set(-1 if opted is None else int(opted))
        pooler = snapshot.pooler if snapshot is not None else None
        self.pooler_clients.set(-1 if pooler is None else pooler.client_connections)
        self.pooler_servers.set(-1 if pooler is None else pooler.server_connections)
        self.pooler_servers_max.set(-1 if pooler is None else pooler.server_connections_max)
        self.pooler_waiting.set(-1 if pooler is None else pooler.waiting_clients)
        if snapshot is None:
            self.capacity_age.set(-1)
            self.pools_max.set(0)
            return
        self.capacity_age.set(capacity.age_s() or 0.0)
        # behind a pooler the bots' pools no longer bound the server's connections: its bound does
        self.pools_max.set(
            snapshot.pooled_max() if pooler is None else pooler.server_connections_max
        )
        for host, count in snapshot.live_per_host().items():
            self.bots_live.labels(host).set(count)
        for bot in snapshot.bots:
            for kind, value in (("rss", bot.rss_bytes), ("uss", bot.uss_bytes)):
                if value is not None:
                    self.bot_memory.labels(bot.slug, bot.host, kind).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_HEARTBEAT_BATCH = 1000


@dataclass
class _Heartbeats:
    missing: int = 0
    unhealthy: int = 0
    set_aside: collections.Counter[str] = field(default_factory=collections.Counter)
    loop_restarts: collections.Counter[str] = field(default_factory=collections.Counter)
    storage_unavailable: collections.Counter[str] = field(default_factory=collections.Counter)


async def _heartbeats(pool: asyncpg.Pool, redis: Redis, *, role_prefix: str) -> _Heartbeats:
    """What the live tenant bots say in their heartbeats (``t:<slug>:heartbeat``, written with a
    TTL): how many are missing, how many report themselves unhealthy, and how many messages the bots
    set aside, by kind; one MGET per thousand tenants."""
    slugs = await TenantRepository(pool).running_slugs()
    found = _Heartbeats()
    for start in range(0, len(slugs), _HEARTBEAT_BATCH):
        batch = slugs[start : start + _HEARTBEAT_BATCH]
        for value in await redis.mget(
            [redis_prefix(slug, role_prefix) + "heartbeat" for slug in batch]
        ):
            if value is None:
                found.missing += 1
                continue
            try:
                beat = json.loads(value)
            except ValueError:
                continue  # a bot of an older version: its heartbeat carries no health
            if not isinstance(beat, dict):
                continue
            if beat.get("healthy") is False:
                found.unhealthy += 1
            for kind, count in (beat.get("set_aside") or {}).items():
                if isinstance(count, int):
                    found.set_aside[str(kind)] += count
            for loop, count in (beat.get("loop_restarts") or {}).items():
                if isinstance(count, int):
                    found.loop_restarts[str(loop)] += count
            for cause, count in (beat.get("storage_unavailable") or {}).items():
                if isinstance(count, int):
                    found.storage_unavailable[str(cause)] += count
    return found


class _TenantCacheCollector(Collector):
    """The tenant cache's state, read at scrape time (the request path only bumps plain ints)."""

    def __init__(self, cache: TenantCache[Any]) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        cache = self._cache
        yield GaugeMetricFamily(
            "botfleet_api_tenant_cache_listening",
            "1 while the tenant cache serves (its LISTEN connection is up), 0 while bypassed",
            value=int(cache.listening),
        )
        yield GaugeMetricFamily(
            "botfleet_api_tenant_cache_entries", "Tenants held by the cache", value=len(cache)
        )
        for name, value, text in (
            ("hits", cache.hits, "Tenant reads answered from the cache"),
            ("misses", cache.misses, "Tenant reads that went to PostgreSQL"),
            ("invalidations", cache.invalidations, "Tenants forgotten after a change"),
        ):
            yield CounterMetricFamily(f"botfleet_api_tenant_cache_{name}", text, value=value)
