"""The ``botfleet`` command: one typer app composed of one module per command group."""

from __future__ import annotations

import typer

from cli import (
    api,
    apikeys,
    billing,
    events,
    jobs,
    migrate,
    operations,
    payments,
    plans,
    sandbox,
    tenant_bot,
    tenants,
    worker,
)
from cli.keys import keygen
from cli.sales_bot import sales_bot
from cli.up import up

app = typer.Typer(
    name="botfleet",
    help="Sell and run Telegram booking bots: one bot container per client.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up", help="Run the whole platform (embedded defaults for what is not configured).")(up)
app.command("keygen", help="Print a new master key for BOTFLEET_MASTER_KEY.")(keygen)
app.command("migrate", help="Migrate the control schema, then every tenant schema.")(
    migrate.migrate
)
app.add_typer(tenants.app, name="tenants")
app.command("api", help="Serve the control plane REST API.")(api.api)
app.add_typer(apikeys.app, name="apikeys")
app.command("sandbox", help="Run the offline Telegram and YooKassa stand-ins.")(sandbox.run)
app.command("tenant-bot", help="Run one tenant's booking bot (BOTFLEET_TENANT_*).")(
    tenant_bot.tenant_bot
)
app.add_typer(plans.app, name="plans")
app.add_typer(payments.app, name="payments")
app.add_typer(billing.app, name="billing")
app.command("sales-bot", help="Run the sales bot (purchases, renewals, owner notices).")(sales_bot)
app.command("worker", help="Run the deploy worker (jobs + reconciler).")(worker.worker)
app.add_typer(operations.fleet_app, name="fleet")
app.add_typer(jobs.app, name="jobs")
app.add_typer(events.app, name="events")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
