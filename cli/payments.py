"""``botfleet payments list [--tenant SLUG]``: payments, newest first."""

from __future__ import annotations

import json

import typer

from cli.common import open_resources, run, settings
from cli.plans import _table

app = typer.Typer(help="Inspect payments.", no_args_is_help=True)


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
