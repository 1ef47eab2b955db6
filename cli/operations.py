"""``botfleet tenants deploy|suspend|resume|redeploy|logs`` and ``botfleet fleet status|upgrade``.

The tenant commands set the desired state and queue the job in one transaction; a running
``botfleet worker`` does the work (``--wait`` follows the job until it finishes).
"""

from __future__ import annotations

import asyncio
import json
import time

import typer

from cli.common import EXIT_FAILURE, fail, open_resources, run, settings
from cli.tenants import app as tenants_app
from fleet import jobs
from fleet.capacity import Capacity, read_capacity
from fleet.lifecycle import Action, TenantLifecycle
from fleet.settings import Settings
from schemas.capacity import MemoryMergeFigures

fleet_app = typer.Typer(help="The whole fleet: status and rolling upgrades.", no_args_is_help=True)

_WAIT = typer.Option(False, "--wait", help="Wait until the job is done (a worker must be running).")
_TIMEOUT = typer.Option(300.0, help="Seconds --wait waits.")


def _request(
    slug: str,
    action: Action,
    *,
    wait: bool,
    timeout: float,
    payload: dict[str, object] | None = None,
) -> None:
    config = settings()

    async def go() -> None:
        async with open_resources(config, redis=False, secrets=False) as res:
            job = await TenantLifecycle(pool=res.pool).request(
                slug,
                action,
                actor="cli",
                payload=payload,
            )
            typer.echo(f"{action} {slug}: job {job['id']} ({job['kind']}) queued")
            if not wait:
                return
            deadline = time.monotonic() + timeout
            while True:
                row = await jobs.get(res.pool, job["id"])
                assert row is not None
                if row["status"] == "done":
                    typer.echo(f"job {job['id']} done")
                    return
                if row["status"] in ("dead", "cancelled"):
                    raise fail(f"job {job['id']} {row['status']}: {row['last_error']}")
                if time.monotonic() > deadline:
                    raise fail(
                        f"job {job['id']} still {row['status']} after {timeout:g}s (is a worker running?)"
                    )
                await asyncio.sleep(0.5)

    run(go)


@tenants_app.command("deploy")
def deploy(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    wait: bool = _WAIT,
    timeout: float = _TIMEOUT,
) -> None:
    """Provision a tenant: it should run; a worker builds whatever is missing."""
    _request(slug, "deploy", wait=wait, timeout=timeout)


@tenants_app.command("suspend")
def suspend(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    wait: bool = _WAIT,
    timeout: float = _TIMEOUT,
) -> None:
    """Stop a tenant's bot; its data is kept."""
    _request(slug, "suspend", wait=wait, timeout=timeout)


@tenants_app.command("resume")
def resume(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    wait: bool = _WAIT,
    timeout: float = _TIMEOUT,
) -> None:
    """Start a suspended tenant's bot again."""
    _request(slug, "resume", wait=wait, timeout=timeout)


@tenants_app.command("redeploy")
def redeploy(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    image: str | None = typer.Option(None, help="Pin the tenant to this image (default: keep)."),
    wait: bool = _WAIT,
    timeout: float = _TIMEOUT,
) -> None:
    """Recreate a tenant's bot (optionally on another image)."""
    payload: dict[str, object] = {"force": True}
    if image:
        payload["image"] = image
    _request(slug, "redeploy", wait=wait, timeout=timeout, payload=payload)


@tenants_app.command("logs")
def logs(
    slug: str = typer.Argument(..., help="The tenant's slug."),
    tail: int = typer.Option(200, min=1, max=100_000, help="Lines from the end."),
) -> None:
    """Print the last lines the tenant's bot wrote (from its container / process log)."""
    config = settings()

    async def go() -> None:
        from deploy_worker.runtimes import create_runtime

        runtime = await asyncio.to_thread(
            create_runtime, config, namespace=config.tenant_role_prefix, observer=True
        )
        try:
            text = await runtime.logs(slug, tail=tail)
        finally:
            await runtime.close()
        typer.echo(
            text.rstrip("\n") if text else f"(no logs for {slug} on the {runtime.kind} runtime)"
        )

    run(go)


@fleet_app.command("status")
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Desired vs actual state of every tenant, orphan instances, and capacity: live bots per host,
    memory per bot and PostgreSQL connections (as the worker last measured them)."""
    config = settings()

    async def go() -> None:
        from deploy_worker.rollout import fleet_status
        from deploy_worker.runtimes import create_runtime
        from deploy_worker.spec import SpecBuilder
        from fleet.tenants import TenantService

        has_key = config.master_key is not None
        async with open_resources(config, secrets=has_key) as res:
            runtime = await asyncio.to_thread(
                create_runtime, config, namespace=config.tenant_role_prefix, observer=True
            )
            try:
                specs = tenants = None
                if res.secrets is not None:
                    tenants = TenantService(
                        pool=res.pool,
                        redis=res.redis,
                        secrets=res.secrets,
                        role_prefix=config.tenant_role_prefix,
                    )
                    specs = SpecBuilder(settings=config, namespace=config.tenant_role_prefix)
                capacity = await read_capacity(
                    res.pool, res.redis, role_prefix=config.tenant_role_prefix
                )
                report = await fleet_status(
                    res.pool, runtime, specs=specs, tenants=tenants, capacity=capacity
                )
            finally:
                await runtime.close()
        if as_json:
            typer.echo(json.dumps({"runtime": runtime.kind, **report.as_dict()}, indent=2))
            return
        columns = (
            "slug", "status", "desired_state", "deployment", "actual", "restarts", "host",
            "rss_mb", "uss_mb", "drift",
        )  # fmt: skip
        rows = [
            {
                **{
                    c: ("-" if getattr(t, c, None) is None else str(getattr(t, c))) for c in columns
                },
                "rss_mb": _mb(t.rss_bytes),
                "uss_mb": _mb(t.uss_bytes),
            }
            for t in report.tenants
        ]
        widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
        typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
        for r in rows:
            typer.echo("  ".join(r[c].ljust(widths[c]) for c in columns))
        if not rows:
            typer.echo("(no tenants)")
        for orphan in report.orphans:
            typer.echo(f"orphan instance: {orphan} (removed by the next reconcile)")
        for line in _capacity_lines(capacity):
            typer.echo(line)

    run(go)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1_000_000:.1f}"


def _merge_line(merging: MemoryMergeFigures) -> str:
    """Kernel same-page merging on the worker's host, in one line."""
    opted = {True: "bots opted in", False: "bots not opted in", None: "bots: unknown"}[
        merging.bots_opted_in
    ]
    why = f" ({merging.reason})" if merging.reason else ""
    ksmd = "ksmd running" if merging.ksmd_running else "ksmd stopped"
    return (
        f"memory merging (KSM) on {merging.host}: {opted}{why}; {ksmd}, {merging.pages_sharing}"
        f" pages sharing {merging.pages_shared} shared, {_mb(merging.general_profit_bytes)} MB"
        " saved"
    )


def _capacity_lines(capacity: Capacity) -> list[str]:
    """The capacity summary under ``fleet status``'s table: live bots per host, memory per bot,
    PostgreSQL server connections against the tenants' pools."""
    lines = []
    snapshot = capacity.snapshot
    pg = capacity.connections
    if snapshot is None:
        lines.append(
            "capacity: no measurement from a worker lately (is `botfleet worker` running?)"
        )
    else:
        hosts = ", ".join(f"{host} {count}" for host, count in snapshot.live_per_host().items())
        lines.append(
            f"live bots per host: {hosts or 'none'} (measured {capacity.age_s() or 0:.0f}s ago "
            f"on the {snapshot.runtime} runtime)"
        )
        for kind in ("rss", "uss"):
            values = [v for b in snapshot.bots if (v := getattr(b, f"{kind}_bytes")) is not None]
            if values:
                lines.append(
                    f"memory per bot ({kind.upper()}): mean {_mb(sum(values) // len(values))} MB,"
                    f" max {_mb(max(values))} MB, total {_mb(sum(values))} MB"
                )
        if snapshot.memory_merge is not None:
            lines.append(_merge_line(snapshot.memory_merge))
    pooled = (
        f"; the live bots' pools may open {snapshot.pooled_max()}"
        f" ({snapshot.pool_max} x {len(snapshot.bots)} live)"
        if snapshot is not None
        else ""
    )
    pooler = snapshot.pooler if snapshot is not None else None
    if pooler is not None:  # the bound is the pooler's, whatever the number of bots
        bound = pooler.server_connections_max or "none"
        lines.append(
            f"PostgreSQL: {pooler.server_connections} server connections (bound {bound}) for"
            f" {pooler.client_connections} client connections via pgbouncer;"
            f" {pooler.waiting_clients} waiting"
        )
        pooled = ""
    lines.append(
        f"postgres: {pg.tenants} tenant connections, {pg.total} server connections of"
        f" max_connections {pg.max_connections}{pooled}"
    )
    return lines


async def warm_new_image(config: Settings, image: str) -> None:
    """On the docker runtime, run the new image's warm-up container once before the first redeploy
    (:mod:`deploy_worker.runtimes.docker`), so the first batch does not start on a cold image. The
    worker would warm it anyway; doing it here also fails early and clearly on a missing image."""
    from deploy_worker.runtimes import docker_client, resolve_kind

    if resolve_kind(config) != "docker":
        return
    from deploy_worker.runtimes.docker import DockerRuntime

    client = await asyncio.to_thread(docker_client)
    if client is None:
        return
    runtime = DockerRuntime(client=client, namespace=config.tenant_role_prefix)
    try:
        seconds = await runtime.warm_image(image)
    finally:
        await runtime.close()
    if seconds is None:
        raise fail(f"{image}: {runtime.last_warm_up_error}; nothing was upgraded")
    typer.echo(f"warmed {image} in {seconds}s")


@fleet_app.command("upgrade")
def upgrade(
    image: str = typer.Option(
        ..., "--image", help="The image every running tenant should move to."
    ),
    parallel: int = typer.Option(5, min=1, max=200, help="Tenants upgraded at once."),
    max_failures: int = typer.Option(
        0, min=0, help="Stop queueing once more tenants than this failed."
    ),
    timeout: float = typer.Option(600.0, help="Seconds one tenant may take."),
) -> None:
    """Rolling upgrade: redeploy running tenants on IMAGE, PARALLEL at a time (a worker must run).

    New tenants still get BOTFLEET_TENANT_IMAGE: set it to IMAGE too once the upgrade is done."""
    config = settings()

    async def go() -> None:
        from deploy_worker.rollout import RollingUpgrade

        await warm_new_image(config, image)
        async with open_resources(config, redis=False, secrets=False) as res:
            report = await RollingUpgrade(
                pool=res.pool,
                image=image,
                parallel=parallel,
                max_failures=max_failures,
                timeout_s=timeout,
                on_progress=lambda slug, outcome: typer.echo(f"  {slug}: {outcome}"),
            ).run()
        typer.echo(
            f"upgrade to {image}: {len(report.upgraded)} upgraded, {len(report.failed)} failed, "
            f"{len(report.already)} already there, {len(report.not_started)} not started "
            f"({report.duration_s}s)"
        )
        for slug, error in sorted(report.failed.items()):
            typer.secho(f"  {slug}: {error}", err=True, fg=typer.colors.RED)
        if report.stopped_early:
            raise fail(
                f"stopped after {len(report.failed)} failure(s) (limit {max_failures})",
                EXIT_FAILURE,
            )
        if report.failed:
            raise typer.Exit(EXIT_FAILURE)

    run(go)
