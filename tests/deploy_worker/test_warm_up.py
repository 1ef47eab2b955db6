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


async def _fork_one(tmp_path: Path, preload: list[str], entry: str) -> tuple[dict[str, Any], str]:
    """Start a fork server with ``preload``, fork one child running ``entry``; (the server's
    ready line, the child's log) once the child exited 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy_worker.runtimes.forkserver",
        *preload,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    log = tmp_path / "bot.log"
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        spawn = {"id": 1, "op": "spawn", "entry": entry, "env": {}, "log": str(log)}
        proc.stdin.write(json.dumps(spawn).encode() + b"\n")
        await proc.stdin.drain()
        replies = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 60)) for _ in range(2)]
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    [pid] = [reply["pid"] for reply in replies if "pid" in reply]
    assert {"exit": pid, "code": 0} in replies, log.read_text()
    return ready, log.read_text()


async def test_a_forked_bot_builds_no_router_template_or_model_of_its_own(tmp_path: Path) -> None:
    """Issue 17: what is the same for every bot is built once, before the fork. A bot forked after
    the warm-up takes the prebuilt routers for its dispatcher (no router or handler object built
    after the fork), renders the texts of a /start and of a booking in both locales without
    compiling a template, validates a /start update and a button press and serialises its answer
    without building a class (pydantic builds aiogram's models lazily), and builds its Bot API
    requests and checks the answers without adding to any ABC's subclass cache (shared objects)."""
    ready, out = await _fork_one(
        tmp_path,
        ["aiogram", "tenant_bot.*", "tests.support.fork_probe", "tenant_bot.app:warm_up"],
        "tests.support.fork_probe:first_use",
    )
    assert ready["failed"] == {}
    child = json.loads(out.strip().splitlines()[-1])
    assert child["prebuilt"] is True
    assert child["routers"] == 14
    assert child["routers_built"] == 0
    assert child["handlers_built"] == 0
    assert child["classes_built"] == 0
    assert child["templates_compiled"] == 0
    assert child["updates"] == 2
    assert child["abc_cache_entries_added"] == 0


def test_routers_are_taken_once_then_built_fresh() -> None:
    """A process that forks bots prebuilds the routers once; its first dispatcher takes them, and
    any later one (tests and benchmarks run several bots in one process) gets fresh routers: a
    router can join one dispatcher only."""
    import tenant_bot.handlers as handlers

    handlers.prebuild_routers()
    prebuilt = handlers._prebuilt
    assert prebuilt is not None
    assert handlers.routers() is prebuilt
    again = handlers.routers()
    assert again is not prebuilt
    assert {id(r) for r in again}.isdisjoint(id(r) for r in prebuilt)
    assert [r.name for r in again] == [r.name for r in prebuilt]


def test_the_fork_server_fills_the_holes_of_its_memory_pools() -> None:
    """Before the freeze the server takes the free blocks of its partly used pymalloc pools, so a
    bot's new objects land on pools of its own instead of copying shared pages."""
    from deploy_worker.runtimes.sharing import fill_pymalloc_holes, free_pymalloc_blocks

    junk = [bytes(100) + bytes([i % 256]) for i in range(20000)]
    del junk[::2]  # holes in the pools of that size class
    before = sum(free_pymalloc_blocks().values())
    taken = fill_pymalloc_holes()
    after = sum(free_pymalloc_blocks().values())
    assert taken >= 10000
    assert after < before / 5
