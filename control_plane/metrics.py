"""Prometheus metrics of one API app, in the app's own registry (two apps in one process, as in tests,
never share or clash).

- ``botfleet_api_requests_total{method,route,status}`` and
  ``botfleet_api_request_duration_seconds{method,route,status}``: by route *template*
  (``/api/v1/tenants/{slug}``), so cardinality stays bounded; unmatched paths count as ``<unmatched>``.
- ``botfleet_jobs{state}`` and ``botfleet_tenants{status}``: refreshed from PostgreSQL on each scrape.
- ``botfleet_api_tenant_cache_*``: whether the tenant cache is serving (its LISTEN connection is up),
  its entries, hits, misses and invalidations; read from the cache on each scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from control_plane.tenant_cache import TenantCache
from fleet.repositories.admin_views import AdminViews

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

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Read job and tenant counts; on failure keep the last values and count the error."""
        try:
            views = AdminViews(pool)
            jobs = await views.job_counts()
            tenants = await views.tenant_counts()
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            self.scrape_errors.inc()
            log.warning("metrics refresh failed", extra={"error": str(exc)})
            return
        for state in (*JOB_STATES, *jobs.keys() - set(JOB_STATES)):
            self.jobs.labels(state).set(jobs.get(state, 0))
        for status in (*TENANT_STATUSES, *tenants.keys() - set(TENANT_STATUSES)):
            self.tenants.labels(status).set(tenants.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
