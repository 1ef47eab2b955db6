"""The ``process`` runtime: each tenant bot a supervised local process, forked from a warm template.

Children come from the fork server (:mod:`deploy_worker.runtimes.forkserver`), which imported aiogram
and the tenant bot once and froze the collector, so a bot starts in milliseconds and shares those
pages copy-on-write. The runtime watches every child through a pidfd (which also works for processes
it did not fork), restarts a crashed bot with exponential backoff, and writes each bot's output to its
own log file.

Labels live in a state directory, one JSON file per bot (pid, process start time, spec hash, restart
count — never the environment, which holds secrets). A restarted worker reads them, adopts the bots
still running (checking the start time, so a recycled pid is never mistaken for a bot) and reports
the rest as stopped for the reconciler to restart or remove. Memory and CPU limits are not enforced
here; use the docker runtime where they matter.

One worker per state directory: two would supervise (and restart, and kill as strays) each other's
bots. The runtime takes an exclusive ``flock`` on ``<state dir>/worker.lock`` on first use (in a
thread, never blocking the event loop) and holds it until :meth:`ProcessRuntime.close`; the kernel
drops it when the worker dies, even by SIGKILL (the fork server and the bots never inherit it). A
second worker fails at once with :class:`~deploy_worker.errors.StateDirLocked` naming the directory.
Reading logs needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy_worker.errors import StateDirLocked
from deploy_worker.runtimes.base import EnsureResult, InstanceState, InstanceStatus
from deploy_worker.runtimes.confinement import Confinement, Limits
from deploy_worker.runtimes.forkclient import ExitCallback, ForkServer, Spawner
from deploy_worker.spec import LABEL_NAMESPACE, TENANT_PIDS_LIMIT, RuntimeSpec, instance_name
from fleet.settings import FORKSERVER_PRELOAD, TENANT_BOT_WARM_UP
from schemas.capacity import BotUsage

log = logging.getLogger(__name__)

MAX_LOG_BYTES = 10 * 1024 * 1024
LOCK_FILE = "worker.lock"
# TENANT_BOT_WARM_UP is called in the fork server after the preloads, before gc.freeze(): what every
# bot would build for itself (compiled templates, a dispatcher's first-use imports and caches) is then
# shared by all. The module names the fork server imports are written only in fleet/settings.py.


@dataclass
class _Child:
    """One tenant bot known to this runtime."""

    slug: str
    spec_hash: str | None
    image: str | None = None
    spec: RuntimeSpec | None = None  # known once ensured in this worker's life; needed to restart
    pid: int | None = None
    proc_start: int | None = None
    pidfd: int | None = None
    state: InstanceState = InstanceState.STOPPED
    started_at: datetime | None = None
    restart_count: int = 0
    exit_code: int | None = None
    supervise: bool = False
    failures: int = 0
    task: asyncio.Task[None] | None = None
    uid: int | None = None


class ProcessRuntime:
    """Tenant bots as supervised local processes."""

    kind = "process"

    def __init__(
        self,
        *,
        namespace: str,
        state_dir: Path,
        preload: Sequence[str] = FORKSERVER_PRELOAD,
        warm_up: Sequence[str] = (TENANT_BOT_WARM_UP,),
        stop_timeout: float = 10.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        stable_after: float = 60.0,
        fork_server: Callable[[ExitCallback], Spawner] | None = None,
        observer: bool = False,
        confinement: Confinement | None = None,
        memory_merge: str = "auto",
    ) -> None:
        """``observer``: read-only (``botfleet fleet status``, logs) — no lock, no supervision, no
        fork server; ``ensure``/``stop``/``remove`` raise. A worker's runtime is never an observer.
        ``confinement``: a uid and cgroup limits per bot (None: bots run as this process's user,
        without limits). ``fork_server`` builds the fork server from the runtime's exit callback
        (default: a :class:`ForkServer` of its own, preloading ``preload`` and ``warm_up``; tests hand
        every runtime a handle on one shared server). ``memory_merge``: the fork server's
        ``BOTFLEET_MEMORY_MERGE`` (kernel same-page merging of the bots' identical pages)."""
        self.namespace = namespace
        self._dir = state_dir
        self._logs = state_dir / "logs"
        self._markers = state_dir / "spawned"
        self._marked: dict[str, int] = {}
        self._stop_timeout = stop_timeout
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._stable_after = stable_after
        self._server: Spawner = (
            fork_server(self._on_exit)
            if fork_server is not None
            else ForkServer(
                preload=[*preload, *warm_up],
                log_path=state_dir / "forkserver.log",
                on_exit=self._on_exit,
                memory_merge=memory_merge,
            )
        )
        self._children: dict[str, _Child] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._exit_codes: dict[int, int] = {}
        self._lock_fd: int | None = None
        self._observer = observer
        self._confinement = confinement
        self._probed = False

    # -- the interface ---------------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Take the state directory's lock, then start the fork server now, so the first bot does not
        wait for aiogram's import."""
        if self._observer:
            return
        await self._acquire_dir_lock()
        await self._probe()
        await self._server.start()

    @property
    def isolation_gaps(self) -> list[str]:
        """What this runtime does not isolate on this host (after :meth:`warm_up`)."""
        gaps = ["bots share the worker's network and see every local port"]
        if self._confinement is None:
            gaps.insert(0, "bots run as the worker's user, without memory, pids or CPU limits")
        else:
            gaps[:0] = self._confinement.gaps
        return gaps

    async def _probe(self) -> None:
        """Once: find what confinement this host allows (raises when it is required and missing)."""
        if self._probed or self._confinement is None:
            return
        await asyncio.to_thread(self._confinement.probe)
        self._probed = True
        log.warning(
            "process runtime: does not isolate on this host: "
            + "; ".join(self.isolation_gaps)
            + " (use BOTFLEET_RUNTIME=docker where it matters)"
        )

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        self._check_owner()
        await self._load()
        async with self._lock(spec.slug):
            child = self._children.get(spec.slug)
            if (
                child is not None
                and not recreate
                and child.spec_hash == spec.spec_hash
                and child.state in (InstanceState.RUNNING, InstanceState.RESTARTING)
            ):
                child.spec, child.supervise = spec, True
                if child.task is None or child.task.done():
                    child.task = asyncio.create_task(
                        self._supervise(child), name=f"supervise-{spec.slug}"
                    )
                return EnsureResult(self._status_of(child), changed=False)
            if child is not None:
                await self._terminate(child)
            child = _Child(
                slug=spec.slug,
                spec_hash=spec.spec_hash,
                image=spec.image,
                spec=spec,
                supervise=True,
            )
            self._children[spec.slug] = child
            await self._spawn(child)
            child.task = asyncio.create_task(self._supervise(child), name=f"supervise-{spec.slug}")
            return EnsureResult(self._status_of(child), changed=True)

    async def stop(self, slug: str) -> bool:
        self._check_owner()
        await self._load()
        async with self._lock(slug):
            child = self._children.get(slug)
            if child is None:
                return False
            was_alive = child.state in (InstanceState.RUNNING, InstanceState.RESTARTING)
            await self._terminate(child)
            return was_alive

    async def remove(self, slug: str) -> bool:
        self._check_owner()
        await self._load()
        async with self._lock(slug):
            child = self._children.pop(slug, None)
            if child is not None:
                await self._terminate(child)
            name = instance_name(self.namespace, slug)
            existed = await asyncio.to_thread(
                _remove_files, self._state_file(slug), self._logs, name
            )
            return child is not None or existed

    async def status(self, slug: str) -> InstanceStatus:
        await self._load()
        child = self._children.get(slug)
        return InstanceStatus.missing(slug) if child is None else self._status_of(child)

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        return await asyncio.to_thread(_tail, self._log_file(slug), tail)

    async def list_by_label(self, labels: dict[str, str] | None = None) -> list[InstanceStatus]:
        await self._load()
        wanted = {k: v for k, v in (labels or {}).items() if k != LABEL_NAMESPACE}
        found = []
        for child in list(self._children.values()):
            status = self._status_of(child)
            if all(_label_of(status, k) == v for k, v in wanted.items()):
                found.append(status)
        if labels and labels.get(LABEL_NAMESPACE, self.namespace) != self.namespace:
            return []
        return found

    async def close(self) -> None:
        """Stop supervising and stop the fork server; the bots keep running for the next worker."""
        for child in self._children.values():
            if child.task is not None:
                child.task.cancel()
        for child in self._children.values():
            if child.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await child.task
            _close_fd(child)
        await self._server.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    async def shutdown_all(self) -> None:
        """Stop every bot of this namespace (tests, ``botfleet up`` teardown)."""
        await self._load()
        for slug in list(self._children):
            await self.stop(slug)

    async def usage(self) -> list[BotUsage]:
        """Every running bot's RSS and USS (``/proc/<pid>/smaps_rollup``, read in one thread); all
        on this host. A bot that exited since is left out."""
        await self._load()
        running = [
            (child.slug, child.pid)
            for child in list(self._children.values())
            if child.pid is not None and child.state == InstanceState.RUNNING
        ]
        host = socket.gethostname()

        def measure() -> list[BotUsage]:
            found = []
            for slug, pid in running:
                memory = read_memory(pid)
                if memory is not None:
                    found.append(
                        BotUsage(
                            slug=slug, host=host, rss_bytes=memory["rss"], uss_bytes=memory["uss"]
                        )
                    )
            return found

        return await asyncio.to_thread(measure)

    @property
    def memory_merge(self) -> dict[str, object]:
        """What the fork server chose for kernel same-page merging (``mode``, ``enabled``,
        ``reason``); empty before it started."""
        return dict(getattr(self._server, "memory_merge", None) or {})

    def pid_of(self, slug: str) -> int | None:
        """The pid of a running bot (None: not running)."""
        child = self._children.get(slug)
        if child is None or child.state != InstanceState.RUNNING:
            return None
        return child.pid

    def memory_of(self, slug: str) -> dict[str, int] | None:
        """``{"rss": bytes, "uss": bytes}`` of a running bot from ``/proc/<pid>/smaps_rollup``."""
        child = self._children.get(slug)
        if child is None or child.pid is None or child.state != InstanceState.RUNNING:
            return None
        return read_memory(child.pid)

    # -- supervision -----------------------------------------------------------------------------

    async def _spawn(self, child: _Child) -> None:
        assert child.spec is not None
        log_path = self._log_file(child.slug)
        await asyncio.to_thread(_prepare_log, log_path)
        await asyncio.to_thread(self._markers.mkdir, parents=True, exist_ok=True)
        await self._unmark(child.slug)
        pid = await self._server.spawn(
            entry=child.spec.entrypoint,
            env=child.spec.env,
            log_path=log_path,
            name=f"{self.namespace}/{instance_name(self.namespace, child.slug)}",
            markers=self._markers,
            jail=await self._jail(child),
        )
        self._marked[child.slug] = pid
        child.pid, child.exit_code = pid, None
        child.started_at = datetime.now(UTC)
        try:
            child.pidfd = os.pidfd_open(pid)
            child.proc_start = _proc_start(pid)
            child.state = InstanceState.RUNNING
        except ProcessLookupError:  # already gone (and reaped): the supervisor restarts it
            child.pidfd, child.state = None, InstanceState.STOPPED
        await self._persist(child)
        log.info("process started", extra={"tenant": child.slug, "pid": pid})

    async def _jail(self, child: _Child) -> dict[str, object] | None:
        """The bot's uid (kept for its life in this installation) and fresh cgroups with the spec's
        limits; None without confinement."""
        confinement = self._confinement
        if confinement is None or child.spec is None:
            return None
        await self._probe()
        if child.uid is None:
            taken = [c.uid for c in self._children.values() if c is not child]
            child.uid = confinement.free_uid(taken)
        limits = Limits(
            memory_bytes=child.spec.memory_bytes, pids=TENANT_PIDS_LIMIT, cpus=child.spec.cpus
        )
        name = instance_name(self.namespace, child.slug)
        jail = await asyncio.to_thread(confinement.prepare, name, uid=child.uid, limits=limits)
        return jail.as_request()

    def confinement_usage(self, slug: str) -> dict[str, int]:
        """The bot's cgroup usage (``memory`` bytes, ``pids``); empty without cgroups. Blocking."""
        if self._confinement is None:
            return {}
        return self._confinement.usage(instance_name(self.namespace, slug))

    async def _supervise(self, child: _Child) -> None:
        """Wait for the bot to exit; restart it with backoff while it should run."""
        while True:
            await self._wait_exit(child)
            _close_fd(child)
            await self._unmark(child.slug)
            await asyncio.sleep(0.05)  # let the fork server's exit report arrive
            child.exit_code = self._exit_codes.pop(child.pid or -1, None)
            if not child.supervise or child.spec is None:
                child.state = InstanceState.STOPPED
                await self._persist(child)
                return
            ran = (datetime.now(UTC) - child.started_at).total_seconds() if child.started_at else 0
            child.failures = 1 if ran >= self._stable_after else child.failures + 1
            child.restart_count += 1
            child.state = InstanceState.RESTARTING
            await self._persist(child)
            delay = min(self._backoff_cap, self._backoff_base * 2 ** (child.failures - 1))
            log.warning(
                "process exited; restarting",
                extra={"tenant": child.slug, "exit_code": child.exit_code, "delay_s": delay},
            )
            await asyncio.sleep(delay)
            try:
                await self._spawn(child)
            except Exception:
                log.exception("process restart failed", extra={"tenant": child.slug})
                child.pid = None

    async def _wait_exit(self, child: _Child) -> None:
        if child.pidfd is None:
            return
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        fd = child.pidfd

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, on_exit)
        try:
            await exited
        finally:
            loop.remove_reader(fd)

    async def _terminate(self, child: _Child) -> None:
        """Stop supervising, then SIGTERM, and SIGKILL after the stop timeout."""
        child.supervise = False
        if child.task is not None and child.task is not asyncio.current_task():
            child.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await child.task
            child.task = None
        if child.pidfd is not None:
            timeout = child.spec.stop_timeout if child.spec else self._stop_timeout
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(child.pidfd, sig)
                try:
                    await asyncio.wait_for(self._wait_exit(child), wait)
                    break
                except TimeoutError:
                    log.warning(
                        "process ignored signal", extra={"tenant": child.slug, "signal": sig.name}
                    )
            _close_fd(child)
        await self._unmark(child.slug)
        child.state = InstanceState.STOPPED
        await self._persist(child)
        if self._confinement is not None:
            name = instance_name(self.namespace, child.slug)
            await asyncio.to_thread(self._confinement.release, name)

    async def _unmark(self, slug: str) -> None:
        pid = self._marked.pop(slug, None)
        if pid is not None:
            await asyncio.to_thread(_unlink, self._markers / f"{pid}.json")

    def _on_exit(self, pid: int, code: int) -> None:
        self._exit_codes[pid] = code
        if len(self._exit_codes) > 10_000:
            self._exit_codes.clear()

    # -- state files -----------------------------------------------------------------------------

    async def _load(self) -> None:
        """Once: adopt the bots a previous worker left running, note the ones that died."""
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return
            if self._observer:
                await self._observe()
                return
            await self._acquire_dir_lock()
            records = await asyncio.to_thread(_read_states, self._dir, self.namespace)
            for record in records:
                child = _Child(
                    slug=record["slug"],
                    spec_hash=record.get("spec_hash"),
                    image=record.get("image"),
                    pid=record.get("pid"),
                    proc_start=record.get("proc_start"),
                    restart_count=int(record.get("restart_count") or 0),
                    started_at=_parse_dt(record.get("started_at")),
                    exit_code=record.get("exit_code"),
                    uid=record.get("uid"),
                )
                if (
                    record.get("state") != InstanceState.STOPPED
                    and child.pid is not None
                    and _alive(child.pid, child.proc_start)
                ):
                    with contextlib.suppress(ProcessLookupError):
                        child.pidfd = os.pidfd_open(child.pid)
                        child.state = InstanceState.RUNNING
                        # Watch it; it is restarted (with its spec) once the reconciler ensures it.
                        child.task = asyncio.create_task(
                            self._supervise(child), name=f"adopt-{child.slug}"
                        )
                        log.info("adopted process", extra={"tenant": child.slug, "pid": child.pid})
                self._children[child.slug] = child
                if child.pidfd is not None and child.pid is not None:
                    self._marked[child.slug] = child.pid
            known = {c.pid for c in self._children.values() if c.pidfd is not None}
            for pid in await asyncio.to_thread(
                _stray_children, self._markers, self.namespace, known
            ):
                log.warning(
                    "killing a bot forked by a worker that died before recording it",
                    extra={"pid": pid},
                )
            self._loaded = True

    async def _observe(self) -> None:
        """An observer's load: the bots as the state files say, alive or not; nothing adopted, no
        lock taken, no stray killed (a worker may own this directory)."""
        records = await asyncio.to_thread(_read_states, self._dir, self.namespace)
        for record in records:
            child = _Child(
                slug=record["slug"],
                spec_hash=record.get("spec_hash"),
                image=record.get("image"),
                pid=record.get("pid"),
                proc_start=record.get("proc_start"),
                restart_count=int(record.get("restart_count") or 0),
                started_at=_parse_dt(record.get("started_at")),
                exit_code=record.get("exit_code"),
                uid=record.get("uid"),
            )
            if record.get("state") != InstanceState.STOPPED and _alive(child.pid, child.proc_start):
                child.state = InstanceState.RUNNING
            self._children[child.slug] = child
        self._loaded = True

    def _check_owner(self) -> None:
        if self._observer:
            raise StateDirLocked(
                f"this process runtime only observes {self._dir}; changes are the worker's"
            )

    async def _acquire_dir_lock(self) -> None:
        """Hold ``<state dir>/worker.lock`` for the runtime's life, or raise :class:`StateDirLocked`."""
        if self._lock_fd is None:
            self._lock_fd = await asyncio.to_thread(_lock_state_dir, self._dir)

    async def _persist(self, child: _Child) -> None:
        record = {
            "slug": child.slug,
            "namespace": self.namespace,
            "name": instance_name(self.namespace, child.slug),
            "pid": child.pid,
            "proc_start": child.proc_start,
            "spec_hash": child.spec_hash,
            "image": child.image,
            "state": str(child.state),
            "started_at": child.started_at.isoformat() if child.started_at else None,
            "restart_count": child.restart_count,
            "exit_code": child.exit_code,
            "log": str(self._log_file(child.slug)),
            "uid": child.uid,
        }
        await asyncio.to_thread(_write_json, self._state_file(child.slug), record)

    def _status_of(self, child: _Child) -> InstanceStatus:
        return InstanceStatus(
            slug=child.slug,
            state=child.state,
            spec_hash=child.spec_hash,
            instance_id=str(child.pid) if child.pid else None,
            image=child.image,
            restart_count=child.restart_count,
            started_at=child.started_at,
            exit_code=child.exit_code,
            detail=str(child.state),
        )

    def _state_file(self, slug: str) -> Path:
        return self._dir / f"{instance_name(self.namespace, slug)}.json"

    def _log_file(self, slug: str) -> Path:
        return self._logs / f"{instance_name(self.namespace, slug)}.log"

    def _lock(self, slug: str) -> asyncio.Lock:
        return self._locks.setdefault(slug, asyncio.Lock())


# -- helpers (blocking ones run in threads) ---------------------------------------------------------


def _lock_state_dir(directory: Path) -> int:
    """An fd holding an exclusive, non-blocking ``flock`` on ``directory/worker.lock`` (blocking I/O:
    run it in a thread). The fd is not inherited by the fork server or the bots."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = f" (pid {int(path.read_text().split()[0])})"
        raise StateDirLocked(
            f"another botfleet worker{holder} already runs the process runtime on state directory "
            f"{directory} (lock {path}); run one worker per state directory: stop the other "
            "worker, or give this one its own BOTFLEET_PROCESS_STATE_DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _label_of(status: InstanceStatus, key: str) -> str | None:
    return {"botfleet.tenant": status.slug, "botfleet.spec-hash": status.spec_hash}.get(key)


def _close_fd(child: _Child) -> None:
    if child.pidfd is not None:
        with contextlib.suppress(OSError):
            os.close(child.pidfd)
        child.pidfd = None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _proc_start(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _alive(pid: int | None, proc_start: int | None) -> bool:
    """True if ``pid`` is still the process we started (same start time) and not a zombie."""
    if not pid or proc_start is None:
        return False
    fields = _proc_stat(pid)
    if not fields:
        return False
    return fields[0] not in ("Z", "X") and int(fields[19]) == proc_start


def read_memory(pid: int) -> dict[str, int] | None:
    """RSS and USS (private clean + dirty) of ``pid`` in bytes, from ``smaps_rollup``."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    return {
        "rss": values.get("Rss", 0),
        "pss": values.get("Pss", 0),
        "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
    }


def _read_states(directory: Path, namespace: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if not directory.is_dir():
        return records
    for path in sorted(directory.glob("bf-*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("unreadable process state file", extra={"path": str(path)})
            continue
        if record.get("namespace") == namespace and record.get("slug"):
            records.append(record)
    return records


def _stray_children(markers: Path, namespace: str, known: set[int | None]) -> list[int]:
    """Kill children the fork server recorded but no state file claims (a worker died between the
    fork and writing the state); forget markers of processes that are gone. Returns the killed."""
    killed: list[int] = []
    if not markers.is_dir():
        return killed
    for path in markers.glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if str(record.get("name") or "").split("/", 1)[0] != namespace:
            continue
        pid = record.get("pid")
        if _alive(pid, record.get("proc_start")) and pid not in known:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        if pid not in known:
            _unlink(path)
    return killed


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def _prepare_log(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > MAX_LOG_BYTES:
            os.replace(path, path.with_suffix(".log.1"))


def _remove_files(state: Path, logs: Path, name: str) -> bool:
    existed = state.exists()
    for path in (state, logs / f"{name}.log", logs / f"{name}.log.1"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return existed


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
