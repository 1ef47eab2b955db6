"""Prometheus metrics of one API app, in the app's own registry (two apps in one process, as in tests,
never share or clash).

- ``botfleet_api_requests_total{method,route,status}`` and
  ``botfleet_api_request_duration_seconds{method,route,status}``: by route *template*
  (``/api/v1/tenants/{slug}``), so cardinality stays bounded; unmatched paths count as ``<unmatched>``.
- ``botfleet_jobs{state}`` and ``botfleet_tenants{status}``: refreshed from PostgreSQL on each scrape.
"""

from __future__ import annotations

import logging

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
