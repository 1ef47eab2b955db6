"""``botfleet api``: serve the control plane REST API with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

from cli.common import EXIT_BAD_INPUT, connect_redis, fail, run, settings
from fleet.errors import ConfigError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from deploy_worker.runtimes import Runtime
    from fleet.settings import Settings

log = logging.getLogger(__name__)


def api(
    host: str | None = typer.Option(None, help="Address to listen on (BOTFLEET_API_HOST)."),
    port: int | None = typer.Option(None, help="Port to listen on (BOTFLEET_API_PORT)."),
) -> None:
    """Serve the admin API (docs at /docs, health at /healthz and /readyz, metrics at /metrics)."""
    from control_plane.app import create_app
    from control_plane.middleware import install_edge

    config = settings(service=True)
    for name in ("database_url", "redis_url", "master_key"):
        try:
            config.require(name)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from None
    problem = fake_money_problem(config)
    if problem is not None:
        raise fail(problem, EXIT_BAD_INPUT)
    # PostgreSQL and Redis are opened in the app's lifespan, where a failure would end in uvicorn's
    # traceback and exit code 3: check they answer first, for a one-line error and exit code 1.
    run(partial(check_services, config))
    runtime = _log_source(config)
    app = install_edge(create_app(config, log_source=runtime), config)
    if config.sandbox:
        log.warning("sandbox installation: payments may be fake; not for production")
    try:
        serve(app, host=host or config.api_host, port=port or config.api_port)
    finally:
        if runtime is not None:
            with contextlib.suppress(Exception):
                asyncio.run(runtime.close())


async def check_services(config: Settings) -> None:
    """Raise ServiceUnavailable (host and port, never a password) unless PostgreSQL and Redis
    answer."""
    from fleet.db import connect

    conn = await connect(config.require("database_url"))
    await conn.close()
    client = await connect_redis(config.require("redis_url"))
    await client.aclose()


def serve(app: ASGIApp, *, host: str, port: int, **options: Any) -> None:
    """Serve ``app`` with uvicorn as ``botfleet api`` does (the API benchmark serves both of its
    sides through here too). A start that fails (the lifespan's, a port in use) exits 1."""
    import uvicorn

    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes (they cost ~35 ms each and made the p99 latency).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # keep our JSON logging
        access_log=False,  # the app logs each request with its request id
        # Forwarded headers are read by the app alone (control_plane.middleware.EdgeGuard), and
        # only from BOTFLEET_YOOKASSA_TRUSTED_PROXIES: uvicorn's own handling trusts 127.0.0.1
        # (or FORWARDED_ALLOW_IPS), which let any local process claim to be YooKassa.
        proxy_headers=False,
        **options,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the Ctrl-C it handled once it has stopped (as uvicorn.run, swallow it).
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise fail(f"the API did not start on {host}:{port}; the log above says why")


YOOKASSA_API_HOST = "api.yookassa.ru"


def fake_money_problem(config: Settings) -> str | None:
    """Why this configuration would take fake payments without being a sandbox, or None.

    Detectable: YooKassa credentials with ``BOTFLEET_YOOKASSA_API_URL`` on a host other than
    YooKassa's (the stand-in of ``botfleet sandbox``, say), unless ``BOTFLEET_SANDBOX=true``."""
    if config.sandbox or config.yookassa_shop_id is None:
        return None
    host = urlsplit(config.yookassa_api_url).hostname or ""
    if host == YOOKASSA_API_HOST:
        return None
    return (
        f"BOTFLEET_YOOKASSA_API_URL points at {host}, not YooKassa ({YOOKASSA_API_HOST}): its "
        "payments are fake; unset it to take real payments, or set BOTFLEET_SANDBOX=true for a "
        "sandbox installation"
    )


def _log_source(config: Settings) -> Runtime | None:
    """The deploy worker's runtime, to read the bots' logs; None (logs answer 503) if it cannot be
    built here."""
    try:
        from deploy_worker.runtimes import create_runtime

        return create_runtime(config, namespace=config.tenant_role_prefix)
    except Exception as exc:  # any failure only costs the logs endpoint
        log.warning("bot logs unavailable in the API", extra={"reason": str(exc)[:300]})
        return None
