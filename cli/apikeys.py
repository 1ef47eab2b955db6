"""``botfleet apikeys ...``: create, list and revoke the control plane's API keys."""

from __future__ import annotations

import json

import typer

from cli.common import open_resources, run, settings

app = typer.Typer(
    help="Create, list and revoke API keys of the control plane.", no_args_is_help=True
)


@app.command("create")
def create(
    scope: list[str] = typer.Option(
        ..., "--scope", help="admin, read or sales (repeatable: --scope read --scope sales)."
    ),
    name: str = typer.Option("", "--name", help="Who or what uses the key, e.g. ops-alice."),
) -> None:
    """Create a key and print it once: only its hash is stored, it cannot be shown again."""
    from fleet.apikeys import ApiKeyService

    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            made = await ApiKeyService(pool=res.pool).create(scopes=scope, name=name, actor="cli")
        row = made.record
        typer.echo(made.key)
        typer.echo(
            f"API key {row['id']} ({', '.join(row['scopes'])}) created; store it now, it is not "
            "shown again",
            err=True,
        )

    run(go)


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List keys (prefix, scopes, last use), never the keys themselves."""
    from fleet.apikeys import ApiKeyService

    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            rows = await ApiKeyService(pool=res.pool).list(include_revoked=all_keys)
        items = [
            {
                "id": r["id"],
                "name": r["name"],
                "prefix": r["key_prefix"] + "…",
                "scopes": ",".join(r["scopes"]),
                "created_at": r["created_at"].isoformat(timespec="seconds"),
                "last_used_at": r["last_used_at"].isoformat(timespec="seconds")
                if r["last_used_at"]
                else None,
                "revoked_at": r["revoked_at"].isoformat(timespec="seconds")
                if r["revoked_at"]
                else None,
            }
            for r in rows
        ]
        if as_json:
            typer.echo(json.dumps(items, indent=2))
            return
        columns = ("id", "name", "prefix", "scopes", "last_used_at", "revoked_at")
        widths = {c: max([len(c)] + [len(str(i[c] or "-")) for i in items]) for c in columns}
        typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
        for item in items:
            typer.echo("  ".join(str(item[c] or "-").ljust(widths[c]) for c in columns))
        if not items:
            typer.echo("(no API keys)")

    run(go)


@app.command("revoke")
def revoke(
    key_id: int = typer.Argument(..., help="The key's id (see `botfleet apikeys list`)."),
) -> None:
    """Revoke a key: API processes refuse it within BOTFLEET_API_KEY_CACHE_S seconds."""
    from fleet.apikeys import ApiKeyService

    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            await ApiKeyService(pool=res.pool).revoke(key_id, actor="cli")
        typer.echo(f"API key {key_id} revoked")

    run(go)
