"""A standalone tenant bot that reports what it imported once idle, for
tests/tenant_bot/test_idle_footprint.py: ``python -m tests.support.idle_probe`` with the runtime
contract in the environment (as ``python -m tenant_bot`` reads it).

It runs the bot as ``run_from_env`` does (logging set up, polling, background work on), waits until
every supervised loop has made its first pass and then a moment more, prints the sorted names in
``sys.modules`` as one JSON line on stdout and stops the bot.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from schemas.runtime import TenantRuntime
from tenant_bot.app import run
from tenant_bot.logs import setup_logging
from tenant_bot.resources import BotResources

IDLE_SECONDS = 1.0
FIRST_PASSES_SECONDS = 60.0


def _first_passes_pending(resources: BotResources) -> bool:
    return any(status.last_beat is None for status in resources.supervisor)


async def _report_when_idle(resources: BotResources, stop: asyncio.Event) -> None:
    try:
        async with asyncio.timeout(FIRST_PASSES_SECONDS):
            while _first_passes_pending(resources):  # noqa: ASYNC110 (the loops' first beats: no event to wait on)
                await asyncio.sleep(0.05)
        await asyncio.sleep(IDLE_SECONDS)
        print(json.dumps(sorted(sys.modules)), flush=True)
    finally:
        stop.set()


async def main() -> None:
    runtime = TenantRuntime.from_env()
    setup_logging(runtime.slug, os.environ.get("BOTFLEET_LOG_LEVEL", "WARNING").upper())
    stop = asyncio.Event()
    reports: list[asyncio.Task[None]] = []

    def ready(resources: BotResources) -> None:
        reports.append(asyncio.create_task(_report_when_idle(resources, stop)))

    await run(runtime, stop=stop, on_ready=ready)
    await asyncio.gather(*reports)


if __name__ == "__main__":
    asyncio.run(main())
