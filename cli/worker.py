"""``botfleet worker``: the deploy worker process."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from fleet.errors import ConfigError
from fleet.settings import Settings

log = logging.getLogger(__name__)


def worker(
    concurrency: int = typer.Option(
        0, min=0, max=256, help="Jobs at once (0: BOTFLEET_WORKER_CONCURRENCY)."
    ),
    runtime: str = typer.Option("", help="docker, process or swarm (default: BOTFLEET_RUNTIME)."),
) -> None:
    """Claim and run deploy jobs and reconcile the fleet until SIGTERM/SIGINT (then finish running
    jobs). With BOTFLEET_HEALTH_PORT set, serves /healthz, /readyz and /metrics on it."""
    config = settings(service=True)
    overrides: dict[str, object] = {}
    if concurrency:
        overrides["worker_concurrency"] = concurrency
    if runtime:
        overrides["runtime"] = runtime
    config = config.model_copy(update=overrides)
    config = config.model_copy(update={"runtime": _choose_runtime(config)})

    async def go() -> None:
        from deploy_worker.service import open_worker
        from deploy_worker.worker import WorkerCollector
        from kit.checks import postgres_probe, redis_probe
        from kit.health_server import HealthServer, serve_health

        async with open_resources(
            config, pool_size=config.worker_concurrency + 4, provisioner=True
        ) as res:
            assert res.secrets is not None
            async with open_worker(
                config,
                pool=res.pool,
                redis=res.redis,
                secrets=res.secrets,
                provisioner=res.provisioner,
            ) as parts:
                health = HealthServer(
                    supervisors=[parts.worker.supervisor],
                    probes={"postgres": postgres_probe(res.pool), "redis": redis_probe(res.redis)},
                )
                health.registry.register(
                    WorkerCollector(parts.worker, parts.runtime, parts.converger)
                )
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, parts.worker.stop)
                typer.echo(
                    f"worker {parts.worker.worker_id}: runtime {parts.runtime.kind}, "
                    f"namespace {parts.runtime.namespace}",
                    err=True,
                )
                async with serve_health(health, host=config.health_host, port=config.health_port):
                    await parts.worker.run()

    run(go)


def _choose_runtime(config: Settings) -> str:
    """The runtime kind, before anything is opened or created: ``auto`` without an answering Docker
    engine exits 2 (no silent fall back), and so does the process runtime when its confinement is
    required and this host cannot give it (the runtime itself logs what it does not isolate)."""
    from deploy_worker.runtimes import process_confinement, resolve_kind

    try:
        kind = resolve_kind(config)
        if kind == "process":
            process_confinement(config, namespace=config.tenant_role_prefix).probe()
    except ConfigError as exc:  # ConfinementUnavailable included
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    return kind
