"""``botfleet events list|show|retry``: the owner-notice outbox, and failed events above all."""

from __future__ import annotations

import json
from typing import Any

import typer

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from control_plane.services.events import EventAdminService, public_event
from fleet.errors import NotFoundError

app = typer.Typer(help="Inspect and retry owner-notice events (the outbox).", no_args_is_help=True)

COLUMNS = (
    "id",
    "kind",
    "tenant",
    "state",
    "attempts",
    "recipients_told",
    "created_at",
    "last_error",
)


def _shown(row: Any) -> dict[str, Any]:
    return public_event(row).model_dump(mode="json")


@app.command("list")
def list_events(
    failed: bool = typer.Option(False, "--failed", help="Only events set aside as failed."),
    pending: bool = typer.Option(False, "--pending", help="Only events waiting for delivery."),
    delivered: bool = typer.Option(False, "--delivered", help="Only delivered events."),
    tenant: str | None = typer.Option(None, help="Only this tenant's events (slug)."),
    kind: str | None = typer.Option(None, help="Only events of this kind, e.g. tenant.live."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Newest events first."""
    chosen = [
        name
        for name, on in (("failed", failed), ("pending", pending), ("delivered", delivered))
        if on
    ]
    if len(chosen) > 1:
        raise fail("give at most one of --failed, --pending and --delivered", EXIT_BAD_INPUT)
    state = chosen[0] if chosen else None
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            service = EventAdminService(pool=res.pool)
            if tenant is not None and await service.tenant_id(tenant) is None:
                raise NotFoundError(f"tenant {tenant!r} does not exist")
            rows = await service.list(state=state, tenant=tenant, kind=kind, limit=limit)
        items = [_shown(row) for row in rows]
        if as_json:
            typer.echo(json.dumps(items, indent=2))
            return
        lines = [
            {c: "-" if item[c] is None else str(item[c]).replace("\n", " ")[:60] for c in COLUMNS}
            for item in items
        ]
        widths = {c: max([len(c)] + [len(line[c]) for line in lines]) for c in COLUMNS}
        typer.echo("  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip())
        for line in lines:
            typer.echo("  ".join(line[c].ljust(widths[c]) for c in COLUMNS).rstrip())
        if not lines:
            typer.echo("(no events)")

    run(go)


@app.command("show")
def show(event_id: int = typer.Argument(..., min=1, help="The event's id.")) -> None:
    """One event, with its payload and last error."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            try:
                row = await EventAdminService(pool=res.pool).get(event_id)
            except NotFoundError:
                raise NotFoundError(
                    f"event {event_id} does not exist; list events with `botfleet events list`"
                ) from None
        typer.echo(json.dumps(_shown(row), indent=2))

    run(go)


@app.command("retry")
def retry(event_id: int = typer.Argument(..., min=1, help="A failed event's id.")) -> None:
    """Deliver a failed event again; owners already told are not told again."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            row = await EventAdminService(pool=res.pool).retry(
                event_id, actor="cli", request_id=None
            )
        typer.echo(f"event {row['id']} ({row['kind']}) queued for delivery again")

    run(go)
