"""Kernel same-page merging (KSM) for tenant bots: opt a process in, and read the kernel's figures.

A forked bot copies pages of the fork server when it writes to them (CPython 3.11 writes reference
counts), and idle bots running the same code hold many copies with the same bytes. With
``prctl(PR_SET_MEMORY_MERGE, 1)`` (Linux 6.4+) every anonymous page of the process may be merged by
``ksmd`` with identical pages of other opted-in processes, copy-on-write, so they count as shared.
The flag is inherited on fork: the fork server sets it once for itself and every bot it forks.

``BOTFLEET_MEMORY_MERGE`` chooses: ``auto`` (the default) opts in when the kernel has KSM and ``ksmd``
runs (``/sys/kernel/mm/ksm/run`` is 1), ``on`` opts in or fails with the reason, ``off`` never does.
Whether ``ksmd`` runs, and how fast it scans, is the host operator's choice (docs/SCALING.md).

Only the standard library here: the fork server and the tenant bot both import it early.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

KSM_DIR = Path("/sys/kernel/mm/ksm")
PR_SET_MEMORY_MERGE = 67
PR_GET_MEMORY_MERGE = 68
ENV_VAR = "BOTFLEET_MEMORY_MERGE"
MODES = ("auto", "on", "off")
MergeMode = Literal["auto", "on", "off"]

# The host-wide counters operators see (/sys/kernel/mm/ksm, in pages except general_profit: bytes).
COUNTERS = (
    "run",
    "pages_shared",
    "pages_sharing",
    "pages_unshared",
    "pages_volatile",
    "full_scans",
    "general_profit",
    "pages_to_scan",
    "sleep_millisecs",
)


class MemoryMergeUnavailable(RuntimeError):
    """``BOTFLEET_MEMORY_MERGE=on`` but this kernel (or a seccomp filter) does not allow it."""


@dataclass(frozen=True)
class MergeDecision:
    """What :func:`apply_memory_merge` chose for this process, and why (for the log)."""

    mode: str
    enabled: bool
    reason: str


def read_ksm(root: Path = KSM_DIR) -> dict[str, int] | None:
    """The host's KSM counters (``run``, ``pages_sharing``, ``general_profit``, ...), or None when
    the kernel has no KSM. A counter the kernel does not have is left out."""
    if not (root / "run").exists():
        return None
    figures: dict[str, int] = {}
    for name in COUNTERS:
        try:
            figures[name] = int((root / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return figures


def merging_enabled() -> bool | None:
    """Whether this process is opted in (``PR_GET_MEMORY_MERGE``); None where the kernel cannot say."""
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0)
    return None if result < 0 else bool(result)


def _enable() -> str | None:
    """Opt this process in; the error's text, or None when it worked."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) == 0:
        return None
    errno = ctypes.get_errno()
    return f"prctl(PR_SET_MEMORY_MERGE) failed: {os.strerror(errno)} (errno {errno})"


def apply_memory_merge(mode: str, *, root: Path = KSM_DIR) -> MergeDecision:
    """Opt this process (and every child it forks from now on) into KSM as ``mode`` says.

    ``auto``: only when the kernel has KSM and ``ksmd`` runs; ``on``: whenever the kernel allows it
    (raises :class:`MemoryMergeUnavailable` otherwise; with ``ksmd`` stopped nothing merges until an
    operator starts it); ``off``: never. Raises ValueError for any other mode."""
    mode = (mode or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR}={mode!r}: use auto, on or off")
    if mode == "off":
        return MergeDecision(mode, False, f"{ENV_VAR}=off")
    figures = read_ksm(root)
    if figures is None:
        reason = f"the kernel has no KSM ({root} is missing)"
        if mode == "on":
            raise MemoryMergeUnavailable(f"{ENV_VAR}=on but {reason}")
        return MergeDecision(mode, False, reason)
    running = figures.get("run") == 1
    if mode == "auto" and not running:
        return MergeDecision(
            mode,
            False,
            f"ksmd is not running ({root}/run is {figures.get('run')}); start it and restart, "
            f"or set {ENV_VAR}=on",
        )
    error = _enable()
    if error is not None:
        if mode == "on":
            raise MemoryMergeUnavailable(f"{ENV_VAR}=on but {error}")
        return MergeDecision(mode, False, error)
    if not running:
        return MergeDecision(
            mode,
            True,
            f"opted in, but ksmd is not running ({root}/run is {figures.get('run')}): nothing "
            "merges until it is started",
        )
    return MergeDecision(mode, True, "the kernel has KSM and ksmd is running")


def process_merging(pid: int) -> dict[str, int | str] | None:
    """``/proc/<pid>/ksm_stat`` (``ksm_merging_pages``, ``ksm_merge_any``: yes/no, ...), or None
    where the kernel has no such file (or the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/ksm_stat").read_text()
    except OSError:
        return None
    values: dict[str, int | str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        values[key.rstrip(":")] = int(value) if value.lstrip("-").isdigit() else value
    return values
