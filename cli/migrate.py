"""``botfleet migrate``: the control schema, then every tenant schema."""

from __future__ import annotations

import typer

from cli.common import open_resources, run, settings
from fleet.data_plane import install_platform
from fleet.errors import MigrationError
from fleet.migrations import migrate_control, migrate_tenants, pending_tenant_schemas


def migrate(
    concurrency: int = typer.Option(
        0, min=0, max=64, help="Tenant schemas migrated at once (0: BOTFLEET_MIGRATE_CONCURRENCY)."
    ),
) -> None:
    """Apply pending migrations; up-to-date tenant schemas are skipped with one catalog query."""
    config = settings()
    parallel = concurrency or config.migrate_concurrency

    async def go() -> None:
        async with open_resources(
            config, redis=False, secrets=False, pool_size=parallel + 1, provisioner=True
        ) as res:
            async with res.ddl_pool.acquire() as conn:
                await install_platform(conn)
            applied = await migrate_control(res.pool)
            typer.echo(f"control: {len(applied)} migration(s) applied")
            pending, _ = await pending_tenant_schemas(res.pool, config.tenant_role_prefix)
            with typer.progressbar(
                length=max(1, len(pending)), label="tenant schemas", file=None
            ) as bar:
                report = await migrate_tenants(
                    res.ddl_pool,
                    prefix=config.tenant_role_prefix,
                    concurrency=parallel,
                    on_progress=lambda schema, error: bar.update(1),
                )
            typer.echo(
                f"tenants: {len(report.migrated)} migrated, {len(report.up_to_date)} up to date,"
                f" {len(report.failed)} failed"
            )
            for schema, error in sorted(report.failed.items()):
                typer.secho(f"  {schema}: {error}", err=True, fg=typer.colors.RED)
            if report.failed:
                raise MigrationError(f"{len(report.failed)} tenant schema(s) failed to migrate")

    run(go)
