"""``botfleet jobs list|show|retry``: the deploy job queue."""

from __future__ import annotations

import json
from typing import Any

import typer

from cli.common import open_resources, run, settings
from fleet import jobs
from fleet.errors import NotFoundError
from fleet.repositories.tenants import TenantRepository

app = typer.Typer(help="Inspect and retry deploy jobs.", no_args_is_help=True)


def _public(row: Any) -> dict[str, Any]:
    item = dict(row)
    for key, value in item.items():
        if hasattr(value, "isoformat"):
            item[key] = value.isoformat()
    return item


@app.command("list")
def list_jobs(
    status: str | None = typer.Option(None, help="queued, running, done, dead or cancelled."),
    tenant: str | None = typer.Option(None, help="Only this tenant's jobs (slug)."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Newest jobs first."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            tenant_id = None
            if tenant is not None:
                tenant_id = await TenantRepository(res.pool).id_of(tenant)
                if tenant_id is None:
                    raise NotFoundError(f"tenant {tenant!r} does not exist")
            rows = await jobs.list_jobs(res.pool, status=status, tenant_id=tenant_id, limit=limit)
            slugs = await TenantRepository(res.pool).slugs_of([r["tenant_id"] for r in rows])
        items = [{**_public(r), "tenant": slugs.get(r["tenant_id"])} for r in rows]
        if as_json:
            typer.echo(json.dumps(items, indent=2, default=str))
            return
        columns = ("id", "kind", "tenant", "status", "attempts", "run_after", "last_error")
        lines = [{c: "-" if i[c] is None else str(i[c])[:60] for c in columns} for i in items]
        widths = {c: max([len(c)] + [len(line[c]) for line in lines]) for c in columns}
        typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
        for line in lines:
            typer.echo("  ".join(line[c].ljust(widths[c]) for c in columns))
        if not lines:
            typer.echo("(no jobs)")

    run(go)


@app.command("show")
def show(job_id: int = typer.Argument(..., help="The job's id.")) -> None:
    """One job, with its payload and last error."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            row = await jobs.get(res.pool, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist; list jobs with `botfleet jobs list`")
        typer.echo(json.dumps(_public(row), indent=2, default=str))

    run(go)


@app.command("retry")
def retry(job_id: int = typer.Argument(..., help="A dead job's id.")) -> None:
    """Queue a dead job again with fresh attempts."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            row = await jobs.retry(res.pool, job_id)
        typer.echo(f"job {row['id']} ({row['kind']}) queued again")

    run(go)
