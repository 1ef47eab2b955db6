"""``botfleet billing lifecycle``: reminders, auto-renewal, expiry, suspension and deletion."""

from __future__ import annotations

import asyncio
import json
import signal

import typer

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from fleet.errors import ConfigError

app = typer.Typer(help="Run the subscription lifecycle.", no_args_is_help=True)


@app.command("lifecycle")
def lifecycle(
    once: bool = typer.Option(False, "--once", help="One pass, print what it did, exit."),
    tenant: list[str] = typer.Option(None, help="With --once: only these tenants (slugs)."),
) -> None:
    """Move subscriptions along: remind, charge saved cards, expire, suspend, warn, delete."""
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
                await billing.lifecycle.run_forever(
                    interval=config.billing_lifecycle_interval_s, stop=stop
                )

    run(go)
