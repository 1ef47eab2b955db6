"""Kernel same-page merging (``BOTFLEET_MEMORY_MERGE``, ``kit/memory_merge.py``): the choice between
auto, on and off, and with real forked bots through the fork server and ksmd running, the flag in
effect in every child (``/proc/<pid>/ksm_stat``) and the pages they copied from the server merged
(``/proc/<pid>/ksm_merging_pages``), their unique memory falling. ksmd's settings are put back after;
skipped where the kernel has no KSM or this test cannot switch ksmd on (not root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy_worker.runtimes.forkclient import ForkServer
from deploy_worker.runtimes.process import read_memory
from kit.memory_merge import (
    KSM_DIR,
    MemoryMergeUnavailable,
    apply_memory_merge,
    merging_enabled,
    process_merging,
    read_ksm,
)

ROOT = Path(__file__).resolve().parents[2]


def _fake_ksm(tmp_path: Path, run: int) -> Path:
    root = tmp_path / "ksm"
    root.mkdir()
    for name, value in (("run", run), ("pages_sharing", 0), ("general_profit", 0)):
        (root / name).write_text(f"{value}\n")
    return root


def test_off_never_opts_in(tmp_path: Path) -> None:
    decision = apply_memory_merge("off", root=_fake_ksm(tmp_path, 1))
    assert not decision.enabled
    assert decision.reason == "BOTFLEET_MEMORY_MERGE=off"


def test_auto_stays_off_while_ksmd_is_stopped(tmp_path: Path) -> None:
    decision = apply_memory_merge("auto", root=_fake_ksm(tmp_path, 0))
    assert not decision.enabled
    assert "ksmd is not running" in decision.reason


def test_auto_and_on_without_ksm_in_the_kernel(tmp_path: Path) -> None:
    missing = tmp_path / "no-ksm"
    decision = apply_memory_merge("auto", root=missing)
    assert not decision.enabled
    assert "the kernel has no KSM" in decision.reason
    with pytest.raises(MemoryMergeUnavailable, match="BOTFLEET_MEMORY_MERGE=on but the kernel"):
        apply_memory_merge("on", root=missing)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="use auto, on or off"):
        apply_memory_merge("always")


def test_the_counters_are_read_from_sysfs(tmp_path: Path) -> None:
    root = _fake_ksm(tmp_path, 1)
    (root / "pages_sharing").write_text("1234\n")
    figures = read_ksm(root)
    assert figures == {"run": 1, "pages_sharing": 1234, "general_profit": 0}
    assert read_ksm(tmp_path / "none") is None


def _ksm_usable() -> str | None:
    """Why the real test cannot run here, or None."""
    if read_ksm() is None:
        return f"the kernel has no KSM ({KSM_DIR})"
    if not Path("/proc/self/ksm_stat").exists():
        return "the kernel has no /proc/<pid>/ksm_stat (before Linux 6.1)"
    if not os.access(KSM_DIR / "run", os.W_OK):
        return f"cannot switch ksmd on ({KSM_DIR}/run is not writable: not root)"
    return None


@contextlib.contextmanager
def _ksmd_stopped_then_fast() -> Iterator[Callable[[], None]]:
    """ksmd stopped for the block, set to scan fast once the returned ``start()`` is called; the
    host's settings written back after. Stopped first, so what a child copied is measured before
    anything merges (a fast ksmd merged a child's copies before the test could read them)."""
    names = ("run", "pages_to_scan", "sleep_millisecs")
    saved = {name: (KSM_DIR / name).read_text().strip() for name in names}

    def start() -> None:
        (KSM_DIR / "run").write_text("1")

    try:
        (KSM_DIR / "run").write_text("0")
        (KSM_DIR / "pages_to_scan").write_text("5000")
        (KSM_DIR / "sleep_millisecs").write_text("10")
        yield start
    finally:
        for name in names:
            (KSM_DIR / name).write_text(saved[name])


async def test_forked_bots_are_opted_in_and_their_copied_pages_merge(tmp_path: Path) -> None:
    reason = _ksm_usable()
    if reason is not None:
        pytest.skip(reason)
    logs = tmp_path / "logs"
    logs.mkdir()
    server = ForkServer(
        preload=["tests.support.ksm_probe"],
        log_path=tmp_path / "forkserver.log",
        on_exit=lambda pid, code: None,
        memory_merge="on",
    )
    pids: list[int] = []
    with _ksmd_stopped_then_fast() as start_ksmd:
        try:
            await server.start()
            assert server.memory_merge["enabled"] is True
            assert "opted in, but ksmd is not running" in str(server.memory_merge["reason"])
            for n in range(2):
                pids.append(
                    await server.spawn(
                        entry="tests.support.ksm_probe:touch_and_hold",
                        env={},
                        log_path=logs / f"bot{n}.log",
                    )
                )
            for n in range(2):  # each child has read every item: its copies are made
                await _wait_for(lambda n=n: "touched" in _text(logs / f"bot{n}.log"), 60)
            unmerged = {pid: _uss(pid) for pid in pids}
            for pid in pids:
                stat = process_merging(pid)
                assert stat is not None
                assert stat["ksm_merge_any"] == "yes"  # inherited from the server through fork
            # the tuples' pages a child copied (100,000 x 56 bytes: ~1,400 pages) merge
            start_ksmd()
            await _wait_for(lambda: all(_merging(pid) >= 700 for pid in pids), 90)
            for pid in pids:
                assert _uss(pid) < unmerged[pid] - 700 * 4096, (unmerged[pid], _uss(pid))
            figures = read_ksm()
            assert figures is not None and figures["pages_sharing"] > 0
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await server.close()


def _text(path: Path) -> str:
    """The file's text; empty until the child created it."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _merging(pid: int) -> int:
    return int(Path(f"/proc/{pid}/ksm_merging_pages").read_text())


def _uss(pid: int) -> int:
    memory = read_memory(pid)
    assert memory is not None
    return memory["uss"]


async def _wait_for(check: object, timeout: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.5)


def test_a_tenant_bot_refuses_to_start_on_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bot in a container opts itself in at start (``tenant_bot.app``); a setting it cannot honour
    stops it with the reason in its log, ``off`` starts it without merging."""
    from tenant_bot.app import _merge_memory

    if merging_enabled():
        pytest.skip("this test process is already opted in")
    monkeypatch.setenv("BOTFLEET_MEMORY_MERGE", "off")
    assert _merge_memory() is True
    assert merging_enabled() is False
    monkeypatch.setenv("BOTFLEET_MEMORY_MERGE", "sometimes")
    assert _merge_memory() is False
    [record] = [r for r in caplog.records if r.getMessage() == "tenant bot cannot start"]
    assert "use auto, on or off" in record.reason  # type: ignore[attr-defined]
