"""A deploy worker that SIGKILLs itself right after a given provisioning step.

Run by the fault-injection tests as a subprocess: settings come from ``BOTFLEET_*`` variables and the
step from ``CRASH_AFTER_STEP`` (one of :data:`deploy_worker.provisioning.STEPS`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from cli.common import open_resources
from deploy_worker.provisioning import STEPS
from deploy_worker.service import open_worker
from fleet.logs import setup_logging
from fleet.settings import load_settings


async def main() -> None:
    step = os.environ["CRASH_AFTER_STEP"]
    if step not in STEPS:
        raise SystemExit(f"CRASH_AFTER_STEP must be one of {STEPS}")
    settings = load_settings()
    setup_logging("INFO", "text")

    async def crash(slug: str, done: str) -> None:
        if done == step:
            print(f"crashing after step {done} of {slug}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    async with (
        open_resources(settings, pool_size=6) as res,
        open_worker(
            settings, pool=res.pool, redis=res.redis, secrets=res.secrets, step_hook=crash
        ) as parts,  # type: ignore[arg-type]
    ):
        await parts.worker.run()


if __name__ == "__main__":
    asyncio.run(main())
