"""One real fork server for every process runtime of a test session (one per xdist worker).

Starting a fork server imports aiogram and the tenant bot and runs the warm-up: ~3 s of CPU, which
every deploy worker test paid again. Runtimes of different tests never share a bot, a state
directory or a namespace, so one server can fork for all of them (a restarted worker adopts the
bots of a server it did not start, as in production).

Each test has its own event loop while the server must outlive them, so the server lives on an
event loop of its own, in a thread; a runtime talks to it through a :class:`SharedServerHandle`
(``ProcessRuntime(fork_server=shared.handle)``), whose calls hop to that loop and back. Exits are
routed to the runtime that forked the child, on the runtime's loop. Closing a handle (the runtime
closing) leaves the server running; :meth:`SharedForkServer.close` stops it at the session's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from deploy_worker.runtimes.forkclient import ExitCallback, ForkServer
from fleet.settings import FORKSERVER_PRELOAD, TENANT_BOT_WARM_UP

T = TypeVar("T")


class SharedForkServer:
    """A :class:`ForkServer` on a background event loop, shared by every runtime that asks."""

    def __init__(self, *, log_path: Path) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="shared-fork-server", daemon=True
        )
        self._thread.start()
        self._server = ForkServer(
            preload=[*FORKSERVER_PRELOAD, TENANT_BOT_WARM_UP],
            log_path=log_path,
            on_exit=self._exited,
        )
        self._lock = threading.Lock()
        self._routes: dict[int, SharedServerHandle] = {}
        self._unrouted: dict[int, int] = {}  # exits heard before the spawn's caller was known
        self._orphaned: set[int] = set()  # children of closed runtimes: their exits go nowhere

    def handle(self, on_exit: ExitCallback) -> SharedServerHandle:
        """A runtime's handle (pass ``shared.handle`` as the runtime's ``fork_server``)."""
        return SharedServerHandle(self, on_exit)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and wait for it on the caller's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def route(self, pid: int, handle: SharedServerHandle) -> None:
        """Send ``pid``'s exit to ``handle`` (at once if the child has already ended)."""
        with self._lock:
            code = self._unrouted.pop(pid, None)
            if code is None:
                self._routes[pid] = handle
        if code is not None:
            handle.deliver(pid, code)

    def forget(self, handle: SharedServerHandle) -> None:
        """``handle``'s runtime is closed: its children's exits go nowhere from now on."""
        with self._lock:
            for pid in [pid for pid, owner in self._routes.items() if owner is handle]:
                del self._routes[pid]
                self._orphaned.add(pid)

    def _exited(self, pid: int, code: int) -> None:  # on the server's loop
        with self._lock:
            handle = self._routes.pop(pid, None)
            if handle is None and pid not in self._orphaned:
                self._unrouted[pid] = code
            self._orphaned.discard(pid)
        if handle is not None:
            handle.deliver(pid, code)

    def close(self) -> None:
        """Stop the server (bots it forked keep running until their tests remove them)."""
        asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    @property
    def server(self) -> ForkServer:
        return self._server


class SharedServerHandle:
    """One runtime's view of the shared server (a :class:`~deploy_worker.runtimes.forkclient.Spawner`)."""

    def __init__(self, shared: SharedForkServer, on_exit: ExitCallback) -> None:
        self._shared = shared
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._shared.call(self._shared.server.start())

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
        self._loop = asyncio.get_running_loop()
        pid = await self._shared.call(
            self._shared.server.spawn(
                entry=entry, env=env, log_path=log_path, name=name, markers=markers, jail=jail
            )
        )
        self._shared.route(pid, self)
        return pid

    async def close(self) -> None:
        self._shared.forget(self)

    def deliver(self, pid: int, code: int) -> None:
        """Tell the runtime, on its own loop (dropped if that loop is gone with its test)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                loop.call_soon_threadsafe(self._on_exit, pid, code)
