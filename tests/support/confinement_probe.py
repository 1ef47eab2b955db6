"""Entry points a forked, confined 'bot' runs in tests/security/test_process_confinement.py.

Each prints one JSON line to its log (stdout) saying what it could do, then stays up or dies trying.
They run after the fork server dropped them to their uid and put them in their cgroups: every
attempt below is an attack a tenant's code could make from inside its bot.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path


def _attempt(action) -> str:  # type: ignore[no-untyped-def]
    try:
        action()
    except PermissionError:
        return "denied"
    except OSError as exc:
        return f"error {exc.errno}"
    return "allowed"


def _read(path: str) -> None:
    with open(path, "rb") as handle:
        handle.read()


def spy() -> int:
    """Who am I, and can I read the worker's environment, or signal the other bot or the worker?"""
    worker, other = int(os.environ["PROBE_WORKER_PID"]), os.environ.get("PROBE_OTHER_PID")
    report = {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "worker_environ": _attempt(lambda: _read(f"/proc/{worker}/environ")),
        "signal_worker": _attempt(lambda: os.kill(worker, 0)),
        "cgroups": Path("/proc/self/cgroup").read_text(),
        "become_root": _attempt(lambda: os.setuid(0)),
        "no_new_privs": next(
            line.split()[1]
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("NoNewPrivs")
        ),
    }
    if other:
        report["other_environ"] = _attempt(lambda: _read(f"/proc/{other}/environ"))
        report["signal_other"] = _attempt(lambda: os.kill(int(other), signal.SIGTERM))
    print(json.dumps(report), flush=True)
    time.sleep(3600)
    return 0


def hog_memory() -> int:
    """Allocate (and touch) 64 MiB at a time until stopped: the memory limit must stop it."""
    hoard = []
    for step in range(1, 200):
        hoard.append(bytearray(64 * 1024 * 1024))
        print(json.dumps({"allocated_mib": step * 64}), flush=True)
    return 0


def spawn_threads() -> int:
    """Start sleeping threads until refused: the pids limit must refuse before the host does."""
    started = 0
    try:
        for _ in range(5000):
            threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
            started += 1
    except RuntimeError as exc:
        print(json.dumps({"threads": started, "refused": str(exc)}), flush=True)
    else:
        print(json.dumps({"threads": started, "refused": None}), flush=True)
    sys.stdout.flush()
    time.sleep(3600)
    return 0
