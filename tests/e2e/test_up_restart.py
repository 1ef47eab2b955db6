"""``botfleet up`` stopped and started again at once gets every port back (issue 16 item 3): the API,
the sandbox web page, the YooKassa stand-in and the embedded PostgreSQL and Redis, although the
connections the first run's servers closed keep those ports in TIME_WAIT; an open tab keeps working,
and the sandbox Telegram still knows its users (issue 16 item 4)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.support.e2e_support import UpProcess, clean_env, free_port, processes_under

WHERE = {
    "api": r"^Control plane API:\s+(\S+)",
    "web": r"^Sandbox web page:\s+(\S+)",
    "yookassa": r"^YooKassa stand-in:\s+(\S+)",
    "postgres": r"^PostgreSQL \(embedded\):\s+(\S+)",
    "redis": r"^Redis \(embedded\):\s+(\S+)",
}


def addresses(stdout: str) -> dict[str, str]:
    found = {name: re.search(pattern, stdout, re.MULTILINE) for name, pattern in WHERE.items()}
    missing = [name for name, match in found.items() if match is None]
    assert not missing, f"`botfleet up` printed no {missing} line:\n{stdout}"
    return {name: match.group(1) for name, match in found.items() if match}


def in_time_wait(url: str) -> bool:
    """A plain bind (no SO_REUSEADDR) fails while the port's closed connections are in TIME_WAIT."""
    port = httpx.URL(url).port
    assert port is not None
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture
def work() -> Iterator[Path]:
    """A folder the embedded PostgreSQL's unprivileged user can enter (when we are root)."""
    folder = Path(tempfile.mkdtemp(prefix="botfleet-restart-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for pid, _ in processes_under(folder):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
async def test_up_restarted_at_once_keeps_every_port(work: Path) -> None:
    env = clean_env()
    port = free_port()
    first = UpProcess(cwd=work, env=env, logs=work / "logs1", port=port, data_dir=work / "data")
    second = UpProcess(cwd=work, env=env, logs=work / "logs2", port=port, data_dir=work / "data")
    try:
        await first.start(timeout=180)
        before = addresses(first.stdout)
        # A person's open tabs and the platform's own clients: connections the servers close.
        tab = httpx.AsyncClient(timeout=10)
        assert (await tab.get(before["web"])).status_code == 200
        assert (await tab.get(before["api"] + "/healthz")).status_code == 200
        owner = {"first_name": "Owner", "id": 555000111, "language_code": "ru"}
        created = await tab.post(before["web"] + "sandbox/users", json=owner)
        assert created.status_code == 201, created.text
        conn = await asyncpg.connect(before["postgres"])
        redis = Redis.from_url(before["redis"])
        assert await redis.ping()

        assert await first.interrupt() == 0, first.stderr_tail()
        assert in_time_wait(before["web"]), "the test left the web page's port free of TIME_WAIT"

        await second.start(timeout=180)
        assert addresses(second.stdout) == before
        assert (await tab.get(before["web"])).status_code == 200  # the same tab, reconnecting
        # The sandbox Telegram kept its users in the data dir (issue 16 item 4).
        users = (await tab.get(before["web"] + "sandbox/users")).json()["users"]
        assert [(u["id"], u["language_code"]) for u in users] == [(555000111, "ru")]
        assert (await tab.get(before["api"] + "/readyz")).status_code == 200
        assert await second.interrupt() == 0, second.stderr_tail()
        await tab.aclose()
        with contextlib.suppress(Exception):
            await conn.close(timeout=1)
        with contextlib.suppress(Exception):
            await redis.aclose()
    finally:
        first.kill()
        second.kill()
