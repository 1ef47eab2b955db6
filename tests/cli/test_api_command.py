"""``botfleet api`` with PostgreSQL or Redis down says so in one line and exits 1 (issue 16 item 8),
instead of uvicorn's JSON traceback of the failed lifespan and exit code 3."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fleet.secrets import generate_master_key
from tests.support.e2e_support import clean_env


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _api(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        BOTFLEET_MASTER_KEY=generate_master_key(), BOTFLEET_LOG_FORMAT="json", **settings
    )
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "api", "--port", str(_closed_port())],
        cwd=tmp_path,  # no .env of the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("down", ["postgresql", "redis"])
def test_api_with_a_service_down_is_a_one_line_error(
    tmp_path: Path, database_url: str, redis_url: str, down: str
) -> None:
    dead = _closed_port()
    urls = {
        "BOTFLEET_DATABASE_URL": database_url,
        "BOTFLEET_REDIS_URL": redis_url,
    }
    if down == "postgresql":
        urls["BOTFLEET_DATABASE_URL"] = f"postgresql://postgres:pw@127.0.0.1:{dead}/botfleet"
    else:
        urls["BOTFLEET_REDIS_URL"] = f"redis://default:pw@127.0.0.1:{dead}/0"
    done = _api(tmp_path, **urls)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    name = "PostgreSQL" if down == "postgresql" else "Redis"
    assert lines[0].startswith(f"error: cannot connect to {name} at 127.0.0.1:{dead}"), output
    assert "Traceback" not in output
    assert ":pw@" not in output


def test_api_stops_on_ctrl_c_with_exit_code_0(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    port = _closed_port()
    env = clean_env(
        BOTFLEET_MASTER_KEY=generate_master_key(),
        BOTFLEET_DATABASE_URL=database_url,
        BOTFLEET_REDIS_URL=redis_url,
        BOTFLEET_API_TENANT_CACHE_SIZE="0",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the API did not answer /healthz"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Traceback" not in output
