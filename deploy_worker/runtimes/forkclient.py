"""The worker's side of the fork server (:mod:`deploy_worker.runtimes.forkserver`).

Starts the server once (paying aiogram's import once), sends it spawn requests and hears about children
that exit. The server gets a minimal environment of its own, so nothing of the worker's configuration
(database URL, master key) leaks into tenant bots: each child sees that environment plus its spec's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from deploy_worker.errors import RuntimeBackendError
from kit.memory_merge import ENV_VAR as MERGE_ENV_VAR

log = logging.getLogger(__name__)

SERVER_MODULE = "deploy_worker.runtimes.forkserver"
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE")

ExitCallback = Callable[[int, int], None]
"""Told ``(pid, exit code)`` when a child of the fork server ends."""


class Spawner(Protocol):
    """What the process runtime needs of a fork server: :class:`ForkServer`, or (tests) a handle on
    one server shared by many runtimes."""

    async def start(self) -> None: ...

    async def spawn(
        self,
        *,
        entry: str,
        env: Mapping[str, str],
        log_path: Path,
        name: str = "",
        markers: Path | None = None,
        jail: Mapping[str, object] | None = None,
    ) -> int: ...

    async def close(self) -> None: ...


class ForkServer:
    """One fork server process, started on first use and restarted if it dies."""

    def __init__(
        self,
        *,
        preload: Sequence[str],
        log_path: Path,
        on_exit: ExitCallback,
        start_timeout: float = 120.0,
        request_timeout: float = 15.0,
        python: str = sys.executable,
        memory_merge: str = "auto",
    ) -> None:
        """``memory_merge``: ``BOTFLEET_MEMORY_MERGE`` for the server (auto, on, off), whether it
        opts itself and its bots into kernel same-page merging (``kit/memory_merge.py``)."""
        self._preload = list(preload)
        self._memory_merge = memory_merge
        self._log_path = log_path
        self._on_exit = on_exit
        self._start_timeout = start_timeout
        self._request_timeout = request_timeout
        self._python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.server_pid: int | None = None
        self.failed_preloads: dict[str, str] = {}
        self.memory_merge: dict[str, Any] = {}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start the server (if it is not running) and wait until its preloads are imported."""
        async with self._lock:
            if self.running:
                return
            env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
            env["PYTHONUNBUFFERED"] = "1"
            env["HOME"] = str(self._log_path.parent)
            env[MERGE_ENV_VAR] = self._memory_merge
            errors = await asyncio.to_thread(_open_append, self._log_path)
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    self._python,
                    "-m",
                    SERVER_MODULE,
                    *self._preload,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=errors,
                    env=env,
                    cwd=os.getcwd(),
                    start_new_session=True,
                    limit=1 << 20,
                )
            finally:
                os.close(errors)
            assert self._proc.stdout is not None
            try:
                line = await asyncio.wait_for(self._proc.stdout.readline(), self._start_timeout)
                ready = json.loads(line) if line else {}
            except (TimeoutError, ValueError) as exc:
                await self._kill()
                raise RuntimeBackendError(
                    f"process runtime: the fork server did not start: {exc}"
                ) from exc
            if not ready.get("ready"):
                await self._kill()
                why = ready.get("error") or f"see {self._log_path}"
                raise RuntimeBackendError(
                    f"process runtime: the fork server exited at start: {why}"
                )
            self.server_pid = ready.get("pid")
            self.failed_preloads = ready.get("failed") or {}
            for name, reason in self.failed_preloads.items():
                log.warning(
                    "fork server could not preload", extra={"preload": name, "reason": reason}
                )
            merge = ready.get("memory_merge") or {}
            if merge != self.memory_merge:  # once per server start, and only when it changed
                log.info(
                    "fork server memory merging "
                    + ("on" if merge.get("enabled") else "off")
                    + f": {merge.get('reason')}",
                    extra={"memory_merge": merge.get("mode"), "enabled": merge.get("enabled")},
                )
            self.memory_merge = merge
            self._reader = asyncio.create_task(self._read(self._proc), name="forkserver-reader")
            log.info(
                "fork server ready",
                extra={
                    "pid": self.server_pid,
                    "preloaded": ready.get("preloaded"),
                    "frozen_objects": ready.get("frozen"),
                    "pool_holes_filled": ready.get("holes_filled"),
                },
            )

    async def spawn(
        self,
        *,
        entry: str,
        env: Mapping[str, str],
        log_path: Path,
        name: str = "",
        markers: Path | None = None,
        jail: Mapping[str, object] | None = None,
    ) -> int:
        """Fork one child running ``entry`` with ``env``; returns its pid. With ``markers``, the
        server records the child there (``<pid>.json``) before answering; with ``jail``, the child
        joins its cgroups and drops to its uid first."""
        await self.start()
        body: dict[str, Any] = {
            "op": "spawn",
            "entry": entry,
            "env": dict(env),
            "log": str(log_path),
            "name": name,
        }
        if markers is not None:
            body["markers"] = str(markers)
        if jail is not None:
            body["jail"] = dict(jail)
        reply = await self._request(body)
        if "pid" not in reply:
            raise RuntimeBackendError(f"process runtime: spawn failed: {reply.get('error')}")
        return int(reply["pid"])

    async def close(self) -> None:
        """Stop the server (its children keep running; a later worker adopts them)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise RuntimeBackendError("process runtime: the fork server is not running")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            proc.stdin.write((json.dumps({"id": request_id, **body}) + "\n").encode())
            await proc.stdin.drain()
            return await asyncio.wait_for(future, self._request_timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise RuntimeBackendError(
                f"process runtime: the fork server did not answer: {exc!r}"
            ) from exc
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "exit" in message:
                self._on_exit(int(message["exit"]), int(message.get("code", -1)))
                continue
            future = self._pending.get(message.get("id"))
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("fork server exited"))
        if self._proc is proc:
            log.warning("fork server exited", extra={"returncode": await proc.wait()})
            self._proc = None

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _open_append(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
