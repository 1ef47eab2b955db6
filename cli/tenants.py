"""``botfleet tenants ...``: create, list, show and delete tenants by hand."""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic import ValidationError as PydanticValidationError

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from fleet.data_plane import TenantRoleLimits
from fleet.repositories.tenants import Tenant, TenantRepository
from fleet.secrets import mask_token
from fleet.tenants import TenantService
from schemas.tenants import LOCALES, TenantCreate

app = typer.Typer(help="Create, inspect and delete tenants.", no_args_is_help=True)

_CLI_OPTION = {
    "slug": "--slug",
    "display_name": "--name",
    "owner_telegram_ids": "--owner-telegram-id",
    "bot_token": "--bot-token",
    "plan_code": "--plan",
    "timezone": "--timezone",
    "locale": "--locale",
}


def _parse_create(**values: Any) -> TenantCreate:
    try:
        return TenantCreate(**values)
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "input"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and field == "slug":
            message = (
                "must match ^[a-z][a-z0-9_]{2,30}$ (a lowercase letter, then 2-30 lowercase "
                "letters, digits or '_'), e.g. barber_ivan"
            )
        raise fail(f"{_CLI_OPTION.get(field, field)}: {message}", EXIT_BAD_INPUT) from None


def _public(tenant: Tenant, token: str | None = None) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "display_name": tenant.display_name,
        "status": tenant.status,
        "desired_state": tenant.desired_state,
        "plan_code": tenant.plan_code,
        "locale": tenant.locale,
        "timezone": tenant.timezone,
        "owner_telegram_ids": list(tenant.owner_telegram_ids),
        "bot_username": tenant.bot_username,
        "bot_token": mask_token(token) if token else None,
        "created_at": tenant.created_at.isoformat(),
    }


@app.command("create")
def create(
    slug: str = typer.Option(
        ..., help="Lowercase id: a letter, then 2-30 letters, digits or _ (e.g. barber_ivan)."
    ),
    name: str = typer.Option(..., help="The business's display name."),
    owner_telegram_id: list[int] = typer.Option(..., help="Owner's Telegram user id (repeatable)."),
    bot_token: str = typer.Option(..., help="The bot's token from @BotFather.", envvar=None),
    plan: str | None = typer.Option(None, help="Plan code (see `botfleet plans list`)."),
    timezone: str = typer.Option("Europe/Moscow", help="IANA time zone of the business."),
    locale: str = typer.Option("ru", help=f"Bot language: {', '.join(LOCALES)}."),
) -> None:
    """Create a tenant: its control row and its data plane (schema, role, Redis user)."""
    data = _parse_create(
        slug=slug,
        display_name=name,
        owner_telegram_ids=owner_telegram_id,
        bot_token=bot_token,
        plan_code=plan,
        timezone=timezone,
        locale=locale,
    )
    config = settings()

    async def go() -> None:
        async with open_resources(config, provisioner=True) as res:
            assert res.secrets is not None
            service = TenantService(
                pool=res.pool,
                redis=res.redis,
                secrets=res.secrets,
                role_prefix=config.tenant_role_prefix,
                role_limits=TenantRoleLimits.from_settings(config),
                provisioner=res.provisioner,
            )
            tenant = await service.create(data, actor="cli", provision_now=True)
            typer.echo(
                f"created tenant {tenant.slug} (schema {service.names(data.slug).schema});"
                " a provision job is queued for the deploy worker"
            )

    run(go)


@app.command("list")
def list_tenants(
    status: str | None = typer.Option(None, help="Only tenants with this status."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List tenants."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            rows, after = [], 0
            while batch := await TenantRepository(res.pool).list(status=status, after_id=after):
                rows.extend(batch)
                after = batch[-1].id
        items = [_public(r) for r in rows]
        if as_json:
            typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        columns = ("slug", "status", "desired_state", "plan_code", "timezone", "display_name")
        widths = {c: max([len(c)] + [len(str(i[c] or "-")) for i in items]) for c in columns}
        typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
        for item in items:
            typer.echo("  ".join(str(item[c] or "-").ljust(widths[c]) for c in columns))
        if not items:
            typer.echo("(no tenants)")

    run(go)


@app.command("show")
def show(slug: str = typer.Argument(..., help="The tenant's slug.")) -> None:
    """Show one tenant (the bot token masked)."""
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False) as res:
            assert res.secrets is not None
            tenant = await TenantService(
                pool=res.pool,
                redis=res.redis,
                secrets=res.secrets,
                role_prefix=config.tenant_role_prefix,
            ).get(slug)
            token = res.secrets.decrypt(tenant.bot_token_enc)
        typer.echo(json.dumps(_public(tenant, token), ensure_ascii=False, indent=2))

    run(go)


@app.command("delete")
def delete(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: this drops the tenant's data."),
) -> None:
    """Delete a tenant: drop its schema, role, Redis user and keys."""
    if not yes:
        raise fail(f"deleting {slug} drops its data; add --yes to confirm", EXIT_BAD_INPUT)
    config = settings()

    async def go() -> None:
        async with open_resources(config, provisioner=True) as res:
            assert res.secrets is not None
            await TenantService(
                pool=res.pool,
                redis=res.redis,
                secrets=res.secrets,
                role_prefix=config.tenant_role_prefix,
                provisioner=res.provisioner,
            ).delete_now(slug, actor="cli")
        typer.echo(f"deleted tenant {slug}")

    run(go)
