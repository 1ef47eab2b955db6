"""``botfleet plans ...``: create and list the plans the sales bot sells."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import typer

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings

app = typer.Typer(help="Create and list plans.", no_args_is_help=True)


def _price(raw: str) -> Decimal:
    try:
        price = Decimal(raw)
    except InvalidOperation:
        raise fail(
            "--price: not a number; give an amount like 990 or 990.00", EXIT_BAD_INPUT
        ) from None
    if price < 0 or price != price.quantize(Decimal("0.01")) or price >= Decimal("1e10"):
        raise fail(
            "--price: a non-negative amount with at most 2 decimals, e.g. 990.00", EXIT_BAD_INPUT
        )
    return price


@app.command("create")
def create(
    code: str = typer.Option(
        ..., help="Short id: a letter, then letters, digits, '_' or '-' (e.g. basic)."
    ),
    name: str = typer.Option(..., help="Name shown to buyers."),
    price: str = typer.Option(..., help="Price per period, exact (e.g. 990.00)."),
    period_days: int = typer.Option(30, help="Days one payment buys."),
    currency: str = typer.Option("RUB", help="ISO-4217 currency code."),
    description: str = typer.Option("", help="One line shown under the plan."),
    max_staff: int | None = typer.Option(None, help="Staff members allowed (none: unlimited)."),
) -> None:
    """Create a plan."""
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_-]{1,31}", code):
        raise fail(
            "--code: a lowercase letter, then 1-31 letters, digits, '_' or '-'", EXIT_BAD_INPUT
        )
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise fail("--currency: three capital letters, e.g. RUB", EXIT_BAD_INPUT)
    if not 1 <= period_days <= 3660:
        raise fail("--period-days: between 1 and 3660", EXIT_BAD_INPUT)
    if not 1 <= len(name.strip()) <= 100:
        raise fail("--name: 1-100 characters", EXIT_BAD_INPUT)
    amount = _price(price)
    config = settings()

    async def go() -> None:
        from fleet.repositories.plans import PlanRepository

        async with open_resources(config, redis=False, secrets=False) as res:
            row = await PlanRepository(res.pool).insert(
                code=code,
                name=name.strip(),
                price=amount,
                period_days=period_days,
                currency=currency,
                description=description,
                max_staff=max_staff,
            )
        typer.echo(
            f"created plan {row['code']}: {row['price']} {row['currency']} / {row['period_days']} days"
        )

    run(go)


@app.command("list")
def list_plans(
    all_plans: bool = typer.Option(False, "--all", help="Include plans no longer on sale."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List plans, cheapest first."""
    config = settings()

    async def go() -> None:
        from fleet.repositories.plans import PlanRepository

        async with open_resources(config, redis=False, secrets=False) as res:
            rows = await PlanRepository(res.pool).list(active_only=not all_plans)
        items = [
            {
                "code": r["code"],
                "name": r["name"],
                "price": str(r["price"]),
                "currency": r["currency"],
                "period_days": r["period_days"],
                "active": r["active"],
            }
            for r in rows
        ]
        if as_json:
            typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        _table(items, ("code", "name", "price", "currency", "period_days", "active"), "(no plans)")

    run(go)


def _table(items: list[dict[str, object]], columns: tuple[str, ...], empty: str) -> None:
    widths = {c: max([len(c)] + [len(str(i[c])) for i in items]) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for item in items:
        typer.echo("  ".join(str(item[c]).ljust(widths[c]) for c in columns))
    if not items:
        typer.echo(empty)
