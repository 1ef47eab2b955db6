"""An in-process read cache of tenants as ``GET /api/v1/tenants/{slug}`` shows them, kept coherent with
PostgreSQL by ``LISTEN botfleet_tenants`` (control migration 0400: every insert, update or delete of a
tenant row notifies its slug, a ``TRUNCATE`` notifies ``*``).

The guarantees:

- The cache serves entries only while its listener is LISTENing. When the listener's connection is
  lost (or a periodic ping on it fails) the cache is emptied and bypassed, every read goes to
  PostgreSQL, until a new connection is LISTENing again; the cache is emptied once more at that
  moment, since changes made in the gap were never notified.
- A write made by this process forgets its tenant as soon as it commits (before the API answers), so a
  client sees its own change at once. Writes of other processes (the deploy worker, billing, plain SQL)
  are seen once their notification arrives: no read is stale beyond that delay.
- A read from PostgreSQL that overlapped any invalidation is not stored (:attr:`TenantCache.generation`):
  it may hold the row as it was before the write that caused the invalidation.
- At most ``max_entries`` tenants are kept (the oldest entry goes first).
- Only the platform is heard. Any role that can connect may ``NOTIFY botfleet_tenants`` (PostgreSQL
  has no privilege for it), so a notification counts only when its sender's backend is a platform
  role's (:class:`fleet.data_plane.PlatformSenders`: a role that can use ``control``; tenant roles
  cannot). A sender that is already gone when looked up (a CLI that exits right after its commit)
  is heard: forgetting a tenant only costs a read, serving a stale one would be wrong. So a tenant
  that wants to flush an entry must open a new connection per notification and lose the race with
  the look-up; one that stays connected is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar

import asyncpg

from fleet.data_plane import PlatformSenders
from fleet.errors import ServiceUnavailable
from fleet.logs import mask
from kit.supervisor import Supervisor

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "botfleet_tenants"
EVERY_TENANT = "*"  # the payload of a TRUNCATE: forget every tenant (no slug contains '*')
LOOP_NAME = "tenant_cache_listener"

V = TypeVar("V")


class TenantCache(Generic[V]):
    """Values by tenant slug, served only while :meth:`listening` says notifications arrive.

    Callers read with :meth:`get`; on a miss they take :attr:`generation`, read PostgreSQL, and hand
    the value to :meth:`put` with that generation, which drops it if anything was invalidated since.
    """

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, V] = {}
        self._generation = 0
        self._listening = False
        # Plain counters (read by the /metrics collector): no lock on the request path.
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    @property
    def generation(self) -> int:
        """Changes on every invalidation and every change of :attr:`listening`."""
        return self._generation

    @property
    def listening(self) -> bool:
        return self._listening

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, slug: str) -> V | None:
        # Nothing is stored while not listening, so an empty dict answers for both cases.
        value = self._entries.get(slug)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, slug: str, value: V, *, generation: int) -> None:
        """Keep ``value``, read from PostgreSQL after :attr:`generation` was ``generation``, unless
        something was invalidated since (the value may predate that write) or nobody listens."""
        if generation != self._generation or not self._listening or self._max_entries <= 0:
            return
        if slug not in self._entries and len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[slug] = value

    def invalidate(self, slug: str) -> None:
        """Forget ``slug`` (``*``: every tenant)."""
        self._generation += 1
        self.invalidations += 1
        if slug == EVERY_TENANT:
            self._entries.clear()
        else:
            self._entries.pop(slug, None)

    def set_listening(self, listening: bool) -> None:
        """Start or stop serving entries; either way, everything cached so far is forgotten."""
        self._generation += 1
        self._listening = listening
        self._entries.clear()


Connect = Callable[[], Awaitable[asyncpg.Connection]]


class TenantChangeListener:
    """Holds one PostgreSQL connection LISTENing on :data:`NOTIFY_CHANNEL` and invalidates ``cache``
    from its notifications; reconnects (every ``retry_s``) when the connection is lost, and pings it
    every ``ping_s`` so that a connection dead without a word is noticed too. Its loop runs
    supervised (:meth:`start`), so even an unexpected error only turns the cache off until the
    loop is restarted, and shows in the API's ``/readyz`` and ``/metrics``."""

    def __init__(
        self,
        *,
        cache: TenantCache[Any],
        connect: Connect,
        ping_s: float = 5.0,
        ping_timeout_s: float = 2.0,
        retry_s: float = 1.0,
    ) -> None:
        self._cache = cache
        self._connect = connect
        self._ping_s = ping_s
        self._ping_timeout_s = ping_timeout_s
        self._retry_s = retry_s
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._own_supervisor: Supervisor | None = None
        self._senders = PlatformSenders()
        self._checks: set[asyncio.Task[None]] = set()
        self.ignored = 0  # notifications from senders that are not the platform

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the LISTEN connection, while there is one."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def start(self, supervisor: Supervisor | None = None, *, name: str = LOOP_NAME) -> None:
        """Try to LISTEN now (the cache serves from the first request on if it can), then keep
        listening in the background as loop ``name`` of ``supervisor`` (which then owns starting and
        stopping it), or of a supervisor of its own."""
        await self._listen()
        if supervisor is None:
            supervisor = self._own_supervisor = Supervisor("tenant-cache")
        supervisor.add(
            name,
            partial(self.run, on_tick=supervisor.beater(name)),
            stale_after=max(60.0, 6 * (self._ping_s + self._ping_timeout_s)),
        )
        if self._own_supervisor is not None:
            self._own_supervisor.start()

    async def stop(self) -> None:
        if self._own_supervisor is not None:
            await self._own_supervisor.stop()
            self._own_supervisor = None
        await self._drop()

    async def run(self, *, on_tick: Callable[[], None] | None = None) -> None:
        """Keep LISTENing until cancelled: reconnect every ``retry_s`` while down, ping every
        ``ping_s`` while up; ``on_tick`` after each round. An unexpected error stops serving from
        the cache and propagates, for the supervisor to log, count and restart the loop."""
        try:
            while True:
                if self._conn is None:
                    await asyncio.sleep(self._retry_s)
                    await self._listen()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), self._ping_s)
                    if self._lost.is_set() or not await self._ping():
                        await self._drop()
                if on_tick is not None:
                    on_tick()
        except BaseException:
            # Stop serving rather than risk stale reads; a restarted loop connects anew.
            await self._drop()
            raise

    async def _listen(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            conn = await self._connect()
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
            TimeoutError,
            ServiceUnavailable,
        ) as exc:
            log.warning("tenant cache off: cannot LISTEN", extra={"error": mask(str(exc))[:300]})
            if conn is not None:
                conn.terminate()
            return
        self._lost.clear()
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        # Only now are changes certain to be notified; what was cached before may be stale.
        self._cache.set_listening(True)
        log.info("tenant cache on", extra={"channel": NOTIFY_CHANNEL})

    async def _ping(self) -> bool:
        assert self._conn is not None
        try:
            async with self._senders.lock:  # sender look-ups share the connection
                await self._conn.fetchval("SELECT 1", timeout=self._ping_timeout_s)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning(
                "tenant cache LISTEN connection failed a ping",
                extra={"error": mask(str(exc))[:300]},
            )
            return False
        return True

    async def _drop(self) -> None:
        """Stop serving from the cache, then let the connection go."""
        conn, self._conn = self._conn, None
        if self._cache.listening:
            self._cache.set_listening(False)
        for task in list(self._checks):
            task.cancel()
        if conn is None:
            return
        conn.remove_termination_listener(self._terminated)
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), self._ping_timeout_s)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            conn.terminate()

    def _notified(self, conn: object, pid: int, channel: str, slug: str) -> None:
        verdict = self._senders.known(pid)
        if verdict is None:  # look the sender up first (on the LISTEN connection)
            task = asyncio.get_running_loop().create_task(self._check_sender(pid, slug))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
        else:
            self._heard(pid, slug, verdict)

    async def _check_sender(self, pid: int, slug: str) -> None:
        conn = self._conn
        if conn is None:
            return  # the cache was emptied with the connection
        try:
            verdict = await self._senders.check(conn, pid, timeout=self._ping_timeout_s)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # Cannot tell: forget the tenant (a read) rather than risk serving it stale.
            log.warning(
                "tenant cache: sender look-up failed", extra={"error": mask(str(exc))[:300]}
            )
            verdict = None
        self._heard(pid, slug, verdict)

    def _heard(self, pid: int, slug: str, platform: bool | None) -> None:
        if platform is False:
            self.ignored += 1
            if self.ignored & (self.ignored - 1) == 0:  # 1st, 2nd, 4th, 8th...: no log flood
                log.warning(
                    "tenant cache: ignored notifications not sent by the platform",
                    extra={"pid": pid, "ignored": self.ignored},
                )
            return
        self._cache.invalidate(slug)
        log.debug("tenant cache invalidated", extra={"tenant": slug})

    def _terminated(self, conn: object) -> None:
        # Called by asyncpg as the connection goes: stop serving at once, reconnect in _run.
        log.warning("tenant cache off: LISTEN connection lost; reading PostgreSQL until it is back")
        if self._cache.listening:
            self._cache.set_listening(False)
        self._lost.set()
