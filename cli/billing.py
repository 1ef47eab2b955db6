"""``botfleet billing lifecycle``: reminders, auto-renewal, expiry, suspension and deletion."""

from __future__ import annotations

import asyncio
import json
import signal
from functools import partial
from typing import Any, Protocol

import typer

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from fleet.errors import ConfigError
from kit.loops import every
from kit.supervisor import Supervisor

app = typer.Typer(help="Run the subscription lifecycle.", no_args_is_help=True)

# A pass in progress at shutdown may finish (it may be charging a saved card) within this many
# seconds; compose's stop_grace_period (40 s) leaves room for it.
STOP_GRACE_S = 30.0


class LifecyclePasses(Protocol):
    async def run_once(self) -> Any: ...


def supervise_lifecycle(
    supervisor: Supervisor, lifecycle: LifecyclePasses, *, interval: float, stop: asyncio.Event
) -> None:
    """Run lifecycle passes every ``interval`` seconds under ``supervisor`` (loop ``lifecycle``):
    a pass that raises is logged, counted and retried with backoff; a pass that hangs for
    several intervals turns the process's health red (``botfleet billing lifecycle`` and ``botfleet
    up`` share this)."""
    supervisor.add(
        "lifecycle",
        partial(
            every, interval, lifecycle.run_once, stop=stop, on_tick=supervisor.beater("lifecycle")
        ),
        stale_after=max(900.0, 5 * interval),
    )


@app.command("lifecycle")
def lifecycle(
    once: bool = typer.Option(False, "--once", help="One pass, print what it did, exit."),
    tenant: list[str] = typer.Option(None, help="With --once: only these tenants (slugs)."),
) -> None:
    """Move subscriptions along: remind, charge saved cards, expire, suspend, warn, delete.
    With BOTFLEET_HEALTH_PORT set, serves /healthz, /readyz and /metrics on it."""
    config = settings(service=not once)
    for name in ("database_url", "master_key", "yookassa_shop_id", "yookassa_secret_key",
                 "yookassa_return_url"):  # fmt: skip
        try:
            config.require(name)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from None

    async def go() -> None:
        from fleet.billing.wiring import open_billing
        from fleet.errors import NotFoundError
        from fleet.repositories.tenants import TenantRepository
        from kit.checks import postgres_probe
        from kit.health_server import HealthServer, serve_health

        async with open_resources(config, redis=False) as res:
            assert res.secrets is not None
            tenant_ids = None
            if tenant:
                tenant_ids = []
                for slug in tenant:
                    row = await TenantRepository(res.pool).get(slug)
                    if row is None:
                        raise NotFoundError(f"tenant {slug!r} does not exist")
                    tenant_ids.append(row["id"])
            async with open_billing(settings=config, pool=res.pool, secrets=res.secrets) as billing:
                if once:
                    report = await billing.lifecycle.run_once(tenant_ids=tenant_ids)
                    typer.echo(json.dumps(report.as_dict()))
                    return
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                supervisor = Supervisor("lifecycle")
                supervise_lifecycle(
                    supervisor,
                    billing.lifecycle,
                    interval=config.billing_lifecycle_interval_s,
                    stop=stop,
                )
                health = HealthServer(
                    supervisors=[supervisor], probes={"postgres": postgres_probe(res.pool)}
                )
                async with serve_health(health, host=config.health_host, port=config.health_port):
                    supervisor.start()
                    try:
                        await stop.wait()
                    finally:
                        await supervisor.stop(grace=STOP_GRACE_S)

    run(go)
