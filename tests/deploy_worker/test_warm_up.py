"""The fork server's warm-up: ``tenant_bot.app.warm_up`` builds without I/O; warm-ups run before the
freeze and a failing one is reported, not fatal."""

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
