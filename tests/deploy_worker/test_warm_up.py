"""The fork server's warm-up: ``tenant_bot.app.warm_up`` builds without I/O; warm-ups run before the
freeze and a failing one is reported, not fatal; the server freezes what it built and a bot it forks
inherits it frozen, its own collector on."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_tenant_bot_warm_up_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from templates import LOCALES, _environment
    from tenant_bot.app import warm_up

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("warm_up must not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    warm_up()
    env = _environment("tenant_bot")
    assert env.cache is not None
    compiled = {key[1] for key in env.cache}
    assert {f"{locale}.j2" for locale in LOCALES} <= compiled


async def test_fork_server_runs_warm_ups_and_reports_failures() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy_worker.runtimes.forkserver",
        "json",
        "tenant_bot.app:warm_up",
        "json:no_such_function",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    assert ready["ready"] is True
    assert ready["preloaded"] == ["json", "tenant_bot.app:warm_up"]
    assert list(ready["failed"]) == ["json:no_such_function"]


async def test_the_fork_server_freezes_what_it_built_for_the_bots(tmp_path: Path) -> None:
    """The server reports how many objects it froze; a child it forks shares them in the permanent
    generation (its collections never write to them) and collects its own garbage."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy_worker.runtimes.forkserver",
        "json",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    log = tmp_path / "bot.log"
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        spawn = {
            "id": 1,
            "op": "spawn",
            "entry": "tests.support.fork_probe:collector",
            "env": {},
            "log": str(log),
        }
        proc.stdin.write(json.dumps(spawn).encode() + b"\n")
        await proc.stdin.drain()
        replies = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) for _ in range(2)]
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    assert ready["frozen"] > 1000  # the interpreter's and json's objects, at least
    [pid] = [reply["pid"] for reply in replies if "pid" in reply]
    assert {"exit": pid, "code": 0} in replies
    child = json.loads(log.read_text())
    assert child["enabled"] is True
    assert child["frozen"] > 1000


async def test_the_worker_reports_a_failed_preload_and_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A preload the fork server could not import is a warning naming it; the server still serves
    (the log record once crashed: ``module`` is a reserved attribute of a LogRecord)."""
    from deploy_worker.runtimes.forkclient import ForkServer

    server = ForkServer(
        preload=["json", "json:no_such_function"],
        log_path=tmp_path / "forkserver.log",
        on_exit=lambda pid, code: None,
    )
    try:
        await server.start()
        assert server.running
    finally:
        await server.close()
    [record] = [r for r in caplog.records if r.getMessage() == "fork server could not preload"]
    assert record.levelname == "WARNING"
    assert record.preload == "json:no_such_function"  # type: ignore[attr-defined]
    assert "no_such_function" in record.reason  # type: ignore[attr-defined]
