"""ksmd for a benchmark run: switch it on with fixed scan settings (restored afterwards), measure its
CPU, and wait until merging has settled, so ``density.py --ksm`` measures the same way each time.

Needs root (``/sys/kernel/mm/ksm`` is written); the host's settings are put back on exit, even when
the run fails. ksmd's run=0 on exit leaves already merged pages merged (the run's bots are gone by
then, and their pages with them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kit.memory_merge import KSM_DIR, read_ksm

# What the run changes, and so saves and restores.
TUNABLES = ("run", "pages_to_scan", "sleep_millisecs")


def ksmd_pid() -> int | None:
    """The kernel thread ksmd's pid (None: no such thread)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "ksmd":
                    return int(entry.name)
    return None


def ksmd_cpu_s(pid: int | None) -> float | None:
    """ksmd's CPU time so far (utime + stime, seconds)."""
    if pid is None:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def ksmd_on(pages_to_scan: int, sleep_ms: int, root: Path = KSM_DIR) -> Iterator[dict[str, str]]:
    """ksmd running with ``pages_to_scan`` pages every ``sleep_ms`` ms for the block; yields the
    host's previous settings, which are written back on exit."""
    if read_ksm(root) is None:
        raise SystemExit(f"--ksm: this kernel has no KSM ({root} is missing)")
    saved = {name: (root / name).read_text().strip() for name in TUNABLES}
    try:
        (root / "pages_to_scan").write_text(str(pages_to_scan))
        (root / "sleep_millisecs").write_text(str(sleep_ms))
        (root / "run").write_text("1")
    except PermissionError as exc:
        raise SystemExit(f"--ksm: cannot write {root} ({exc.strerror}): run as root") from exc
    try:
        yield saved
    finally:
        (root / "run").write_text(saved["run"])  # first: stop scanning at our rate
        for name in ("pages_to_scan", "sleep_millisecs"):
            with contextlib.suppress(OSError):
                (root / name).write_text(saved[name])


async def settle(
    *, timeout_s: float, full_scans: int = 2, growth: float = 0.01, poll_s: float = 2.0
) -> dict[str, Any]:
    """Wait until ``pages_sharing`` grew by less than ``growth`` (a fraction) over ``full_scans``
    complete ksmd scans in a row, or ``timeout_s`` passed. Returns the time it took, whether it
    settled, and ksmd's CPU meanwhile."""
    pid = ksmd_pid()
    cpu0 = ksmd_cpu_s(pid)
    started = time.monotonic()
    figures = read_ksm() or {}
    mark_scans, mark_sharing, calm = (
        figures.get("full_scans", 0),
        figures.get("pages_sharing", 0),
        0,
    )
    settled = False
    while time.monotonic() - started < timeout_s:
        await asyncio.sleep(poll_s)
        figures = read_ksm() or {}
        if figures.get("full_scans", 0) <= mark_scans:
            continue
        sharing = figures.get("pages_sharing", 0)
        calm = calm + 1 if sharing - mark_sharing <= growth * max(mark_sharing, 1) else 0
        mark_scans, mark_sharing = figures.get("full_scans", 0), sharing
        if calm >= full_scans:
            settled = True
            break
    cpu1 = ksmd_cpu_s(pid)
    return {
        "ksm_settle_s": round(time.monotonic() - started, 1),
        "ksm_settled": settled,
        "ksmd_cpu_s_settling": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
    }


def counters(prefix: str = "ksm_") -> dict[str, int]:
    """The host's KSM counters for the result line (``ksm_pages_sharing``, ...)."""
    return {
        prefix + name.removeprefix("ksm_"): value
        for name, value in (read_ksm() or {}).items()
        if name not in ("run", "pages_to_scan", "sleep_millisecs")
    }
