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
                    tenant_ids.append(row.id)
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


@app.command("failures")
def failures(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Subscriptions the lifecycle set aside (a step failed on them for a reason of their own):
    oldest first, with the error. Fix the cause, then `botfleet billing retry SUBSCRIPTION_ID`."""
    config = settings()

    async def go() -> None:
        from fleet.repositories import subscriptions as subscription_repo

        async with open_resources(config, redis=False, secrets=False) as res:
            rows = await subscription_repo.list_set_aside(res.pool)
        items = [
            {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in dict(r).items()}
            for r in rows
        ]
        if as_json:
            typer.echo(json.dumps(items, indent=2, default=str))
            return
        if not items:
            typer.echo("(no subscription set aside)")
            return
        for item in items:
            typer.echo(
                f"{item['id']}  {item['slug']}  {item['status']}  set aside"
                f" {item['lifecycle_failed_at']}  {item['lifecycle_error']}"
            )

    run(go)


@app.command("retry")
def retry(
    subscription_id: int = typer.Argument(..., help="A set-aside subscription's id."),
) -> None:
    """Hand a set-aside subscription back to the lifecycle (its next run picks it up)."""
    config = settings()

    async def go() -> None:
        from fleet.repositories import audit
        from fleet.repositories import subscriptions as subscription_repo

        async with (
            open_resources(config, redis=False, secrets=False) as res,
            res.pool.acquire() as conn,
            conn.transaction(),
        ):
            if not await subscription_repo.retry_lifecycle(conn, subscription_id):
                raise fail(
                    f"subscription {subscription_id} is not set aside; list them with "
                    "`botfleet billing failures`"
                )
            await audit.record(
                conn,
                actor="cli",
                action="subscription.lifecycle_retry",
                target=f"subscription:{subscription_id}",
            )
        typer.echo(f"subscription {subscription_id} handed back to the lifecycle")

    run(go)


@app.command("plan")
def change_plan(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    plan_code: str = typer.Argument(..., help="The plan to move it to."),
    quote: bool = typer.Option(False, "--quote", help="Only say what the change would do."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change a tenant's plan by the owners' rule (README, "Billing rules for owners"): a dearer
    plan at once, once the difference is paid (the checkout URL is printed for the owner); a
    cheaper one at the end of the paid time."""
    config = settings()
    for name in ("master_key", "yookassa_shop_id", "yookassa_secret_key", "yookassa_return_url"):
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
            tenant = await TenantRepository(res.pool).get(slug)
            if tenant is None:
                raise NotFoundError(f"tenant {slug!r} does not exist")
            async with open_billing(settings=config, pool=res.pool, secrets=res.secrets) as billing:
                if quote:
                    change = await billing.plan_changes.quote(
                        tenant_id=tenant.id, plan_code=plan_code
                    )
                else:
                    change = await billing.plan_changes.change(
                        tenant_id=tenant.id, plan_code=plan_code, actor="cli"
                    )
        shown = {
            "kind": change.kind.value,
            "tenant": change.slug,
            "from_plan": change.from_plan,
            "to_plan": change.to_plan,
            "credit": str(change.credit),
            "amount_due": str(change.amount_due),
            "currency": change.currency,
            "effective_at": change.effective_at.isoformat() if change.effective_at else None,
            "paid_until": change.paid_until.isoformat() if change.paid_until else None,
            "confirmation_url": change.checkout.confirmation_url if change.checkout else None,
        }
        if as_json:
            typer.echo(json.dumps(shown, indent=2))
            return
        typer.echo(" ".join(f"{k}={v}" for k, v in shown.items() if v is not None))

    run(go)
