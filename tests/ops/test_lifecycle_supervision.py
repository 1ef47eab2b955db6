"""The lifecycle runner's passes run supervised, as ``botfleet billing lifecycle`` and ``botfleet up``
run them: passes beat while they work, and when the runner's database goes (its pool closed under it)
every pass crashes, is logged and counted, and the loop turns failing."""

from __future__ import annotations

import asyncio

from cryptography.fernet import Fernet

from cli.billing import supervise_lifecycle
from fleet.billing.wiring import open_billing
from fleet.db import create_pool
from fleet.secrets import SecretBox
from fleet.settings import load_settings
from kit.supervisor import Supervisor


async def test_lifecycle_passes_beat_and_a_lost_database_turns_the_loop_failing(
    own_database: str,
) -> None:
    database_url = own_database
    key = Fernet.generate_key().decode()
    settings = load_settings(
        database_url=database_url,
        master_key=key,
        yookassa_shop_id="123456",
        yookassa_secret_key="test_secret",
        yookassa_return_url="https://t.me/lifecycle_test_bot",
    )
    pool = await create_pool(database_url, max_size=2)
    supervisor = Supervisor("lifecycle", backoff_initial=0.01, backoff_max=0.1, failing_after=3)
    stop = asyncio.Event()
    try:
        async with open_billing(settings=settings, pool=pool, secrets=SecretBox(key)) as billing:
            supervise_lifecycle(supervisor, billing.lifecycle, interval=0.05, stop=stop)
            async with supervisor:
                await asyncio.sleep(1.0)  # many passes, 0.05 s apart
                beating = supervisor.report()["lifecycle"]
                assert supervisor.healthy, beating
                await pool.close()  # the database goes away under the runner
                for _ in range(200):
                    if not supervisor.healthy:
                        break
                    await asyncio.sleep(0.05)
                broken = supervisor.report()["lifecycle"]
                stop.set()
    finally:
        if not pool._closed:  # type: ignore[attr-defined]
            await pool.close()
    assert beating["restarts"] == 0 and beating["healthy"]
    assert beating["seconds_since_beat"] < 0.9  # it beat after its passes, not only at start
    assert not broken["healthy"] and broken["failing"]
    assert broken["restarts"] >= 3
    assert "closed" in str(broken["last_error"]).lower() or "Interface" in str(broken["last_error"])
