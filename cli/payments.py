"""``botfleet payments list [--tenant SLUG]``: payments, newest first;
``botfleet payments refund ID [--amount X] [--reason ...] [--key K]``: refund one."""

from __future__ import annotations

import getpass
import json
import uuid

import typer

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from cli.plans import _table
from fleet.errors import ConfigError

app = typer.Typer(help="Inspect and refund payments.", no_args_is_help=True)


@app.command("list")
def list_payments(
    tenant: str | None = typer.Option(None, help="Only this tenant's payments (its slug)."),
    status: str | None = typer.Option(
        None, help="Only payments in this status (new, pending, succeeded, canceled)."
    ),
    limit: int = typer.Option(50, min=1, max=1000, help="How many to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List payments, newest first."""
    config = settings()

    async def go() -> None:
        from fleet.errors import NotFoundError
        from fleet.repositories.payments import PaymentReadRepository
        from fleet.repositories.tenants import TenantRepository

        async with open_resources(config, redis=False, secrets=False) as res:
            tenant_id = None
            if tenant is not None:
                row = await TenantRepository(res.pool).get(tenant)
                if row is None:
                    raise NotFoundError(f"tenant {tenant!r} does not exist")
                tenant_id = row.id
            rows = await PaymentReadRepository(res.pool).list(
                tenant_id=tenant_id, status=status, limit=limit
            )
        items = [
            {
                "id": str(r["id"]),
                "tenant": r["tenant_slug"] or "-",
                "plan": r["plan_code"],
                "amount": f"{r['amount']} {r['currency']}",
                "status": r["status"],
                "purpose": r["purpose"],
                "provider_id": r["provider_payment_id"] or "-",
                "created_at": r["created_at"].isoformat(timespec="seconds"),
                "paid_at": r["paid_at"].isoformat(timespec="seconds") if r["paid_at"] else "-",
            }
            for r in rows
        ]
        if as_json:
            typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        _table(
            items,
            ("created_at", "tenant", "plan", "amount", "status", "purpose", "paid_at", "id"),
            "(no payments)",
        )

    run(go)


def _operator() -> str:
    """Who runs the command, for the audit log (containers may have no user name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command("refund")
def refund(
    payment_id: str = typer.Argument(
        ..., help="Our payment id (botfleet payments list) or YooKassa's payment id."
    ),
    amount: str | None = typer.Option(
        None, help="How much to refund, e.g. 150 or 150.50 (default: everything not yet refunded)."
    ),
    reason: str = typer.Option("", help="Why (kept in the audit log, sent to YooKassa)."),
    key: str | None = typer.Option(
        None,
        help="Idempotence key of this refund. Default: derived from the payment and the amount, "
        "so running the same command again never refunds twice; give a new key to make a second "
        "refund of the same amount.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Refund a payment, fully or partly. A full refund takes back the period the payment paid for
    (the bot is suspended if that was the current period); a partial one leaves the subscription.
    The owner is told in the sales bot; everything is in the audit log."""
    config = settings()
    for name in ("database_url", "master_key", "yookassa_shop_id", "yookassa_secret_key",
                 "yookassa_return_url"):  # fmt: skip
        try:
            config.require(name)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from None

    async def go() -> None:
        from fleet.billing.errors import ProviderUnavailable
        from fleet.billing.refunds import parse_refund_amount
        from fleet.billing.wiring import open_billing
        from fleet.errors import NotFoundError
        from fleet.repositories import payment_writes

        value = parse_refund_amount(amount)
        async with open_resources(config, redis=False) as res:
            assert res.secrets is not None
            # YooKassa's ids look like UUIDs too: a provider id is looked up first.
            row = await payment_writes.find_by_provider_id(res.pool, payment_id)
            if row is not None:
                our_id = row["id"]
            else:
                try:
                    our_id = uuid.UUID(payment_id)
                except ValueError:
                    raise NotFoundError(f"payment {payment_id!r} does not exist") from None
            refund_key = key or f"cli:{our_id}:{value if value is not None else 'full'}"
            async with open_billing(settings=config, pool=res.pool, secrets=res.secrets) as billing:
                try:
                    made = await billing.refunds.refund(
                        our_id,
                        key=refund_key,
                        actor=f"cli:{_operator()}",
                        amount=value,
                        reason=reason,
                    )
                except ProviderUnavailable as exc:
                    raise fail(
                        f"{exc}. Nothing is lost: run the same command again (same key) to "
                        "finish this refund."
                    ) from None
        if made.replayed and made.status == "canceled":
            raise fail(
                f"an earlier run with key {made.request_key!r} was refused by YooKassa "
                f"({made.last_error}); nothing was refunded. Fix the cause, then run it with a new "
                "--key."
            )
        item = {
            "refund_id": str(made.id),
            "payment_id": str(made.payment_id),
            "amount": f"{made.amount} {made.currency}",
            "status": made.status,
            "effect": made.effect or "-",
            "provider_refund_id": made.provider_refund_id or "-",
            "key": made.request_key,
            "replayed": made.replayed,
        }
        if as_json:
            typer.echo(json.dumps(item, ensure_ascii=False, indent=2))
            return
        if made.replayed:
            typer.echo(
                f"This refund was already made with key {made.request_key!r} (nothing new "
                "refunded); give --key with a new value to make another refund."
            )
        for name, shown in item.items():
            typer.echo(f"{name:>18}: {shown}")

    run(go)
