"""``botfleet sales-bot``: run the sales bot (long polling) and its owner notifications."""

from __future__ import annotations

import asyncio
import signal

from cli.common import EXIT_BAD_INPUT, fail, open_resources, run, settings
from fleet.errors import ConfigError


def sales_bot() -> None:
    """Sell bots: plans, token check, YooKassa checkout, "My bots", owner notifications. With
    BOTFLEET_HEALTH_PORT set, serves /healthz, /readyz and /metrics on it."""
    config = settings(service=True)
    for name in ("database_url", "redis_url", "master_key", "sales_bot_token", "yookassa_shop_id",
                 "yookassa_secret_key", "yookassa_return_url"):  # fmt: skip
        try:
            config.require(name)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from None

    async def go() -> None:
        from kit.checks import postgres_probe, redis_probe
        from kit.health_server import HealthServer, serve_health
        from kit.supervisor import Supervisor
        from sales_bot.app import run as run_bot

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with open_resources(config, pool_size=config.db_pool_size) as res:
            assert res.secrets is not None
            supervisor = Supervisor("sales-bot")
            health = HealthServer(
                supervisors=[supervisor],
                probes={"postgres": postgres_probe(res.pool), "redis": redis_probe(res.redis)},
            )
            async with serve_health(health, host=config.health_host, port=config.health_port):
                await run_bot(
                    config,
                    pool=res.pool,
                    redis=res.redis,
                    box=res.secrets,
                    stop=stop,
                    supervisor=supervisor,
                )

    run(go)
