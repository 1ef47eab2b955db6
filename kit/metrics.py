"""Prometheus view of a :class:`~kit.supervisor.Supervisor`, read at scrape time.

- ``botfleet_loop_restarts_total{process,loop}``: crashes of each supervised loop (each one restarted);
- ``botfleet_loop_healthy{process,loop}``: 1, or 0 while the loop is failing or stale;
- ``botfleet_loop_seconds_since_beat{process,loop}``: time since the loop last reported progress.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kit.supervisor import Supervisor


class SupervisorCollector(Collector):
    """Register with ``registry.register(SupervisorCollector(supervisor))``."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        labels = ["process", "loop"]
        restarts = CounterMetricFamily(
            "botfleet_loop_restarts", "Crashes of a supervised background loop", labels=labels
        )
        healthy = GaugeMetricFamily(
            "botfleet_loop_healthy", "1 unless the loop is failing or stale", labels=labels
        )
        since = GaugeMetricFamily(
            "botfleet_loop_seconds_since_beat",
            "Seconds since the loop last reported progress",
            labels=labels,
        )
        process = self._supervisor.process
        for name, status in self._supervisor.report().items():
            restarts.add_metric([process, name], float(status["restarts"]))  # type: ignore[arg-type]
            healthy.add_metric([process, name], 1.0 if status["healthy"] else 0.0)
            seconds = status["seconds_since_beat"]
            if seconds is not None:
                since.add_metric([process, name], float(seconds))  # type: ignore[arg-type]
        yield restarts
        yield healthy
        yield since
