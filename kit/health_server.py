"""A small HTTP health endpoint for the platform's processes that serve no HTTP of their own (the
deploy worker, the sales bot, the lifecycle runner), so Docker, an orchestrator or Prometheus can see
what the API already shows on its own routes:

- ``GET /healthz``: liveness, 200 while the event loop answers;
- ``GET /readyz``: 200 when every supervised loop is healthy and every probe (PostgreSQL, Redis)
  passes, else 503; the JSON body names each check and every loop's state;
- ``GET /metrics``: Prometheus text of :attr:`HealthServer.registry` (the supervisors' loops, plus
  whatever the process registers there).

It runs on the process's own event loop (aiohttp, already a dependency through aiogram), so it never
blocks and stops with the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kit.checks import Check, Probe, loops_check
from kit.metrics import SupervisorCollector
from kit.supervisor import Supervisor

log = logging.getLogger(__name__)


class HealthServer:
    """Health, readiness and metrics of one process."""

    def __init__(
        self,
        *,
        supervisors: Sequence[Supervisor],
        probes: Mapping[str, Probe] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._supervisors = list(supervisors)
        self._probes = dict(probes or {})
        self.registry = registry or CollectorRegistry()
        for supervisor in self._supervisors:
            self.registry.register(SupervisorCollector(supervisor))
        self.port: int | None = None

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the process is ready, and the body that says why (or why not)."""
        names = list(self._probes)
        results = await asyncio.gather(*(self._probes[name]() for name in names))
        checks: dict[str, Check] = dict(zip(names, results, strict=True))
        checks["loops"] = loops_check(self._supervisors)
        ready = all(check.ok for check in checks.values())
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
            "loops": {s.process: s.report() for s in self._supervisors},
        }
        return ready, body

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    @asynccontextmanager
    async def serving(self, host: str, port: int) -> AsyncIterator[HealthServer]:
        """Listen on ``host:port`` (0: any free port, then see :attr:`port`) for the block."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            self.port = _bound_port(runner, default=port)
            yield self
        finally:
            await runner.cleanup()
            self.port = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, body = await self.readiness()
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _bound_port(runner: web.AppRunner, *, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


@asynccontextmanager
async def serve_health(
    server: HealthServer, *, host: str, port: int
) -> AsyncIterator[HealthServer | None]:
    """Serve ``server`` on ``host:port`` for the block when ``port`` is set; with port 0 (a CLI run
    nobody probes) no port is opened and the block runs all the same."""
    if not port:
        yield None
        return
    async with server.serving(host, port):
        log.info("health endpoint listening", extra={"host": host, "port": server.port})
        yield server
