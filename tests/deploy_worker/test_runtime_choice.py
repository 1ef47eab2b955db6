"""Choosing the runtime never downgrades isolation silently (issue 14, item 8).

Real ``botfleet worker`` processes; Docker is made "not to answer" by pointing ``DOCKER_HOST`` at a
unix socket nobody listens on, or at a free TCP port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.settings import ENV_PREFIX, Settings

PROCESS_ONLY = pytest.mark.parametrize("runtime_kind", ["process"], indirect=True)


def _env(settings: Settings, docker_host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, (list, dict)):
            continue
        env[ENV_PREFIX + name.upper()] = str(
            value.get_secret_value() if hasattr(value, "get_secret_value") else value
        )
    env["DOCKER_HOST"] = docker_host
    return env


def _closed_unix_socket(tmp_path: Path) -> str:
    path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))  # the file exists, nobody listens: connections are refused
    sock.close()
    return f"unix://{path}"


async def _start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@PROCESS_ONLY
@pytest.mark.parametrize("where", ["unix", "tcp"])
async def test_auto_refuses_to_start_without_docker(
    make_settings: Callable[..., Settings], tmp_path: Path, where: str
) -> None:
    state_dir = tmp_path / "state"
    settings = make_settings(runtime="auto", process_state_dir=str(state_dir))
    if where == "unix":
        docker_host = _closed_unix_socket(tmp_path)
    else:
        docker_host = f"tcp://127.0.0.1:{_free_port()}"
        # nothing listens on the database and Redis either: the refusal must come before any
        # connection is opened, or this would fail on PostgreSQL instead
        dead = _free_port()
        settings = settings.model_copy(
            update={
                "database_url": f"postgresql://postgres@127.0.0.1:{dead}/botfleet",
                "redis_url": f"redis://127.0.0.1:{dead}/0",
            }
        )
    proc = await _start(_env(settings, docker_host))
    out, err = await asyncio.wait_for(proc.communicate(), 60)

    assert proc.returncode == 2, err.decode()
    [line] = err.decode().strip().splitlines()
    assert line.startswith("error: BOTFLEET_RUNTIME=auto but Docker is unreachable"), line
    assert docker_host in line
    assert "BOTFLEET_RUNTIME=docker" in line and "BOTFLEET_RUNTIME=process" in line
    assert out == b""
    assert not state_dir.exists()  # the process runtime created nothing


@pytest.mark.slow  # a worker process and a forked bot
@PROCESS_ONLY
async def test_explicit_process_starts_and_warns(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(runtime="process", log_format="text")
    proc = await _start(_env(settings, _closed_unix_socket(tmp_path)))
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while True:
                raw = await proc.stderr.readline()
                assert raw, "worker exited early:\n" + "".join(seen)
                seen.append(raw.decode())
                if "runtime process, namespace" in seen[-1]:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, "".join(seen) + rest[1].decode()
    warnings = [line for line in seen if "process runtime:" in line]
    assert len(warnings) == 1, "".join(seen)
    [warning] = warnings
    assert "share the worker's network" in warning and "BOTFLEET_RUNTIME=docker" in warning
    if os.geteuid() == 0:  # confinement required (the default) and given: a uid and limits per bot
        assert "worker's own user" not in warning and "limit" not in warning, warning


async def test_up_on_configured_services_refuses_auto_without_docker(tmp_path: Path) -> None:
    """Outside the sandbox (real services configured), `botfleet up` resolves auto as the worker
    does; only embedded defaults make it the process runtime (tests/e2e cover that banner)."""
    from fleet.secrets import generate_master_key

    dead = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        {
            "DOCKER_HOST": _closed_unix_socket(tmp_path),
            "BOTFLEET_RUNTIME": "auto",
            "BOTFLEET_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{dead}/botfleet",
            "BOTFLEET_REDIS_URL": f"redis://127.0.0.1:{dead}/0",
            "BOTFLEET_MASTER_KEY": generate_master_key(),
            "BOTFLEET_TELEGRAM_API_BASE": "https://api.telegram.org",
            "BOTFLEET_SALES_BOT_TOKEN": "123456789:AAEabcdefghijklmnopqrstuvwxyz0123456",
            "BOTFLEET_YOOKASSA_SHOP_ID": "654321",
            "BOTFLEET_YOOKASSA_SECRET_KEY": "test_Zx9kQ2mN7pL4",
        }
    )
    data = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "up",
        "--data-dir",
        str(data),
        "--port",
        str(_free_port()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, out.decode() + err.decode()
    [line] = err.decode().strip().splitlines()
    assert line.startswith("error: BOTFLEET_RUNTIME=auto but Docker is unreachable"), line
    assert not data.exists()
