"""The process runtime's fork server: import aiogram and the tenant bot once, then fork a bot per tenant.

Importing aiogram costs seconds and ~165 MB (pydantic validators for every Bot API type). This
process pays it once: it imports the preload modules, runs a full collection and ``gc.freeze()`` (so
the collector never writes to the inherited objects and their pages stay shared copy-on-write), then
serves requests on stdin and answers on stdout, one JSON object per line:

- ``{"id": 1, "op": "spawn", "entry": "mod:func", "env": {...}, "log": "/path", "name": "bf-x",
  "markers": "/dir", "jail": {"uid": 100000001, "cgroups": ["/sys/fs/cgroup/memory/..."]}}`` ->
  ``{"id": 1, "pid": 4242}``: the child starts a new session, gets exactly ``env`` on top of the
  server's own minimal environment, writes stdout/stderr to ``log``, joins the jail's cgroups and drops
  to its uid (``confinement.py``), runs ``func()`` and exits with its return value.
  ``/dir/<pid>.json`` records the child before the reply.
- ``{"id": 2, "op": "ping"}`` -> ``{"id": 2, "ok": true}``.
- unsolicited ``{"exit": 4242, "code": 1}`` when a child ends (the server reaps its children).

On start it prints ``{"ready": true, "preloaded": [...], "failed": {...}, "frozen": N,
"holes_filled": H, "memory_merge": {"mode": "auto", "enabled": true, "reason": "..."}}`` (N: the
objects it froze, which every bot inherits in the permanent generation; H: the free pymalloc blocks it
took so bots allocate on pools of their own, ``sharing.py``; memory_merge: whether it opted itself,
and so every bot it forks, into kernel same-page merging as ``BOTFLEET_MEMORY_MERGE`` in its
environment says, ``kit/memory_merge.py``), or ``{"ready": false, "error": "..."}`` when it cannot
start as configured (``BOTFLEET_MEMORY_MERGE=on`` on a kernel without KSM). It exits when stdin closes
(the worker is gone); the bots keep running and a restarted worker adopts them.

Run as ``python -m deploy_worker.runtimes.forkserver MODULE [MODULE ...]``; a ``mod:func`` argument is a
warm-up, called (no arguments) after every module is imported and before the freeze, to build what
each bot would otherwise build for itself on start-up (``tenant_bot.app:warm_up`` compiles the
templates, builds a dispatcher once and prebuilds the routers every bot's dispatcher takes), so the
children share it too.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import io
import json
import os
import pkgutil
import resource
import selectors
import signal
import sys
import traceback
from typing import Any, cast

from deploy_worker.runtimes.sharing import fill_pymalloc_holes
from kit.memory_merge import ENV_VAR as MERGE_ENV_VAR
from kit.memory_merge import MemoryMergeUnavailable, apply_memory_merge


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _resolve(entry: str) -> Any:
    module_name, _, attr = entry.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in (attr or "main").split("."):
        target = getattr(target, part)
    return target


def _child(request: dict[str, Any]) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        _confine(request.get("jail") or {})
        # Nothing of the server's (its pipes to the worker, the selector) leaks into a bot.
        os.closerange(3, _max_fd())
        os.environ.update(request["env"])
        sys.argv = [request["entry"]]
        result = _resolve(request["entry"])()
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _confine(jail: dict[str, Any]) -> None:
    """Join the bot's cgroups, then drop to its uid for good (see ``confinement.py``). Any failure
    raises: a bot that cannot be confined as asked does not run."""
    for directory in jail.get("cgroups") or ():
        with open(os.path.join(directory, "cgroup.procs"), "w") as handle:
            handle.write(str(os.getpid()))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o077)
    uid = jail.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)  # a group of its own: the uid's number (no group file entry needed)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise RuntimeError("could not drop to the bot's uid")
        _no_new_privileges()
        # The server's HOME (the state folder) is not the bot's to read: libraries that look for
        # files there (asyncpg's ~/.pgpass and ~/.postgresql certificates) must find nothing.
        os.environ["HOME"] = "/nonexistent"


def _no_new_privileges() -> None:
    """prctl(PR_SET_NO_NEW_PRIVS): no setuid binary or file capability gives the bot root back."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # 38 = PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def _max_fd() -> int:
    try:
        return max(1024, os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(preload: list[str]) -> None:
    """Preload, freeze, then answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we go, through stdin
    # First, so every page the server fills from here on may merge with the bots' identical copies;
    # the flag is inherited by every bot forked afterwards.
    try:
        merge = apply_memory_merge(os.environ.get(MERGE_ENV_VAR, "auto"))
    except (MemoryMergeUnavailable, ValueError) as exc:
        _send({"ready": False, "error": str(exc)})
        sys.exit(1)
    loaded: list[str] = []
    failed: dict[str, str] = {}
    calls = [name for name in preload if ":" in name]
    for name in _expand([name for name in preload if ":" not in name], failed):
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # reported to the worker; children import what they need
            failed[name] = f"{type(exc).__name__}: {exc}"
    for entry in calls:  # warm-ups: build once what each bot would build for itself
        try:
            _resolve(entry)()
            loaded.append(entry)
        except Exception as exc:  # reported; the bots then build it themselves
            failed[entry] = f"{type(exc).__name__}: {exc}"
    gc.collect()
    holes = fill_pymalloc_holes()  # the bots' new objects start on pools of their own
    gc.freeze()
    frozen = gc.get_freeze_count()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    # stdin's binary layer is a BufferedReader over a FileIO (typeshed only promises BinaryIO).
    stdin = cast("io.BufferedReader[io.FileIO]", sys.stdin.buffer).raw
    selector.register(stdin, selectors.EVENT_READ, "stdin")
    selector.register(wake_r, selectors.EVENT_READ, "signal")
    _send(
        {
            "ready": True,
            "pid": os.getpid(),
            "preloaded": loaded,
            "failed": failed,
            "frozen": frozen,
            "holes_filled": holes,
            "memory_merge": {
                "mode": merge.mode,
                "enabled": merge.enabled,
                "reason": merge.reason,
            },
        }
    )
    buffer = b""
    while True:
        for key, _ in selector.select(timeout=5.0):
            if key.data == "signal":
                os.read(wake_r, 4096)
                continue
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    _handle(json.loads(line))
        _reap()


def _expand(preload: list[str], failed: dict[str, str]) -> list[str]:
    """``pkg.*`` stands for the package and every module under it (what a bot imports lazily
    at run time is then shared too)."""
    names: list[str] = []
    for name in preload:
        if not name.endswith(".*"):
            names.append(name)
            continue
        package = name[:-2]
        names.append(package)
        try:
            module = importlib.import_module(package)
        except Exception as exc:
            failed[package] = f"{type(exc).__name__}: {exc}"
            continue
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=package + "."):
            if not info.name.rsplit(".", 1)[-1].startswith(("test", "__main__")):
                names.append(info.name)
    return names


def _handle(request: dict[str, Any]) -> None:
    if request.get("op") == "ping":
        _send({"id": request["id"], "ok": True})
        return
    if request.get("op") != "spawn":
        _send({"id": request.get("id"), "error": f"unknown op {request.get('op')!r}"})
        return
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        _child(request)
    marker_dir = request.get("markers")
    if marker_dir:
        # Written before the worker hears the pid: a worker killed in between still finds the child.
        path = os.path.join(marker_dir, f"{pid}.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(
                {"pid": pid, "name": request.get("name"), "proc_start": _proc_start(pid)}, handle
            )
        os.replace(path + ".tmp", path)
    _send({"id": request["id"], "pid": pid})


def _proc_start(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            raw = handle.read()
    except OSError:
        return None
    return int(raw[raw.rfind(")") + 2 :].split()[19])


if __name__ == "__main__":
    serve([m for m in sys.argv[1:] if m])
