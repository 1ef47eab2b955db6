"""Fake money never in production: ``botfleet up`` runs the stand-ins only when nothing real is
configured (or with ``--sandbox``), refuses a mix of real and stand-in before starting anything, and a
sandbox says so in its banner and ``/readyz``; ``botfleet api`` pointed at a YooKassa stand-in
without ``BOTFLEET_SANDBOX`` refuses too. Real processes: ``python -m cli.main up|api``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fleet.secrets import generate_master_key
from sandbox.testing import new_bot_token
from tests.support.e2e_support import (
    REPO_ROOT,
    UpProcess,
    clean_env,
    drop_redis_users,
    free_port,
    processes_under,
    scratch_database,
)


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


MIXES = {
    "real sales bot, no YooKassa": (
        {"BOTFLEET_SALES_BOT_TOKEN": "SALES"},
        "BOTFLEET_SALES_BOT_TOKEN is set but YooKassa is not",
    ),
    "real Telegram API, no YooKassa": (
        {"BOTFLEET_TELEGRAM_API_BASE": "https://api.telegram.org"},
        "BOTFLEET_TELEGRAM_API_BASE is set but YooKassa is not",
    ),
    "real YooKassa, no Telegram": (
        {"BOTFLEET_YOOKASSA_SHOP_ID": "123456", "BOTFLEET_YOOKASSA_SECRET_KEY": "live_secret"},
        "YooKassa is configured but Telegram is not",
    ),
    "YooKassa shop without its secret": (
        {"BOTFLEET_SALES_BOT_TOKEN": "SALES", "BOTFLEET_YOOKASSA_SHOP_ID": "123456"},
        "BOTFLEET_YOOKASSA_SECRET_KEY is not set",
    ),
    "everything real but YooKassa's API on a stand-in": (
        {
            "BOTFLEET_SALES_BOT_TOKEN": "SALES",
            "BOTFLEET_YOOKASSA_SHOP_ID": "100500",
            "BOTFLEET_YOOKASSA_SECRET_KEY": "test_sandbox_secret_key",
            "BOTFLEET_YOOKASSA_API_URL": "http://127.0.0.1:8082/v3",
        },
        "BOTFLEET_YOOKASSA_API_URL points at 127.0.0.1, not YooKassa",
    ),
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_up_refuses_a_mix_of_real_and_stand_in(mix: str, tmp_path: Path) -> None:
    settings, message = MIXES[mix]
    settings = {k: new_bot_token() if v == "SALES" else v for k, v in settings.items()}
    data = tmp_path / "data"
    env = clean_env(**settings)
    started = time.monotonic()
    done = _run(["up", "--data-dir", str(data), "--port", str(free_port())], env, tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert message in lines[0], lines[0]
    if "YooKassa is not" in message:
        assert "--sandbox" in lines[0]
    for setting in settings.values():  # never echoes a secret
        if ":" in setting and "//" not in setting:
            assert setting not in done.stderr
    # Nothing started or created: no data folder, no embedded server, no banner.
    assert not data.exists()
    assert processes_under(tmp_path) == []
    assert "botfleet is up" not in done.stdout
    assert time.monotonic() - started < 30


def test_api_refuses_a_yookassa_stand_in_unless_sandbox(tmp_path: Path) -> None:
    env = clean_env(
        BOTFLEET_DATABASE_URL="postgresql://postgres@127.0.0.1:9/none",
        BOTFLEET_REDIS_URL="redis://127.0.0.1:9/0",
        BOTFLEET_MASTER_KEY=generate_master_key(),
        BOTFLEET_YOOKASSA_SHOP_ID="100500",
        BOTFLEET_YOOKASSA_SECRET_KEY="test_sandbox_secret_key",
        BOTFLEET_YOOKASSA_API_URL="http://127.0.0.1:8082/v3",
    )
    done = _run(["api", "--port", str(free_port())], env, tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "points at 127.0.0.1, not YooKassa" in done.stderr
    assert "BOTFLEET_SANDBOX=true" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# `botfleet up` for real: the whole platform (API, worker and its fork server, sales bot, lifecycle,
# both stand-ins) started and stopped, seconds of CPU for its imports alone: end to end by nature.
@pytest.mark.e2e
async def test_nothing_configured_is_a_loud_sandbox(
    database_url: str, redis_url: str, role_prefix: str, tmp_path: Path
) -> None:
    async with scratch_database(database_url, role_prefix=role_prefix) as db_url:
        up = UpProcess(
            cwd=tmp_path,
            env=clean_env(
                BOTFLEET_DATABASE_URL=db_url,
                BOTFLEET_REDIS_URL=redis_url,
                BOTFLEET_TENANT_ROLE_PREFIX=role_prefix,
                BOTFLEET_RUNTIME="process",
                BOTFLEET_STOP_TIMEOUT_S="3",
                BOTFLEET_WORKER_SHUTDOWN_S="5",
            ),
            logs=tmp_path / "logs",
            port=free_port(),
            data_dir=tmp_path / "data",
        )
        try:
            banner = await up.start()
            assert "SANDBOX: Telegram and YooKassa are stand-ins; payments are FAKE" in up.stdout
            assert "Not for production" in up.stdout
            assert banner.yookassa_api_url.startswith("http://127.0.0.1")
            async with httpx.AsyncClient(timeout=10) as http:
                ready = await http.get(f"{banner.api_url}/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["sandbox"] is True
            assert "payments are fake" in body["checks"]["sandbox"]["detail"]
            assert await up.interrupt() == 0
        finally:
            up.kill()
    await drop_redis_users(redis_url, role_prefix=role_prefix)
