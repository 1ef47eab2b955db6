"""Supervised background loops: a loop that crashes is logged, counted and restarted with backoff.

Every long-running process (API, deploy worker, lifecycle, sales bot, tenant bot) runs its background
loops under one :class:`Supervisor`::

    supervisor = Supervisor("worker")
    supervisor.add("reconciler", reconciler_loop, stale_after=120)
    async with supervisor:          # starts every loop; cancels them on exit
        ...
        supervisor.beat("reconciler")   # from inside the loop, once per pass

A loop is an ``async`` callable that normally runs until cancelled (or until it returns on purpose,
e.g. when a stop event is set). When it raises, the exception is logged with its traceback, counted,
and the loop starts again after an exponential backoff (``backoff_initial`` doubling up to
``backoff_max``, with jitter so a fleet of bots does not retry in step). A loop is *failing* once it
crashed ``failing_after`` times in a row without a beat or a long enough quiet run in between, and
*stale* when it declared ``stale_after`` and has not beaten for that long. Either turns the process's
health red (:attr:`Supervisor.healthy`), which its health endpoint or heartbeat reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

log = logging.getLogger(__name__)

Loop = Callable[[], Awaitable[None]]

# How long a cancelled loop may take to end before the supervisor gives up on it.
STOP_TIMEOUT_SECONDS = 10.0


@dataclass
class LoopStatus:
    """What is known of one supervised loop."""

    name: str
    stale_after: float | None
    started_at: float = 0.0
    last_beat: float | None = None
    restarts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    running: bool = False
    finished: bool = False
    failing: bool = False
    # A failing loop that has since run this long without crashing counts as recovered, even if
    # it never beats (e.g. long polling, whose progress is not observable from outside).
    recovered_after: float = 15.0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def is_failing(self, now: float) -> bool:
        if not self.failing:
            return False
        return not (self.running and now - self.started_at > self.recovered_after)

    def stale(self, now: float) -> bool:
        if self.stale_after is None or not self.running:
            return False
        since = self.last_beat if self.last_beat is not None else self.started_at
        return now - since > self.stale_after

    def as_dict(self, now: float) -> dict[str, object]:
        since = self.last_beat if self.last_beat is not None else self.started_at
        return {
            "running": self.running,
            "healthy": not (self.is_failing(now) or self.stale(now)),
            "failing": self.is_failing(now),
            "stale": self.stale(now),
            "restarts": self.restarts,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "seconds_since_beat": round(now - since, 3) if self.running else None,
        }


class Supervisor:
    """Runs named loops, restarts the ones that crash, and says whether they are healthy."""

    def __init__(
        self,
        process: str,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 15.0,
        failing_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.process = process
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.failing_after = failing_after
        self._clock = clock
        self._loops: dict[str, tuple[Loop, LoopStatus]] = {}
        self._on_crash: list[Callable[[str, BaseException], None]] = []
        self._started = False

    # -- set-up --

    def add(self, name: str, loop: Loop, *, stale_after: float | None = None) -> None:
        """Register a loop. ``stale_after``: seconds without a :meth:`beat` after which the loop
        counts as stuck. A loop added while the supervisor runs starts at once (a component that
        comes up later, e.g. the sales bot after the API in ``botfleet up``, joins the same
        health)."""
        if name in self._loops:
            raise ValueError(f"loop {name!r} is already supervised")
        status = LoopStatus(name=name, stale_after=stale_after, recovered_after=self.backoff_max)
        self._loops[name] = (loop, status)
        if self._started:
            self.start()

    def on_crash(self, callback: Callable[[str, BaseException], None]) -> None:
        """Call ``callback(loop_name, exc)`` on every crash (e.g. to count it in metrics)."""
        self._on_crash.append(callback)

    # -- running --

    def start(self) -> None:
        """Start every registered loop that is not running yet."""
        self._started = True
        for name, (loop, status) in self._loops.items():
            if status._task is None:
                status._task = asyncio.create_task(self._supervise(loop, status), name=name)

    async def stop(self, *, grace: float = 0.0, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Cancel every loop and wait for them to end. With ``grace``, loops that end on their own
        once their owner asked them to (a stop event) get that long to do so before being
        cancelled, so they are never cut in the middle of a step. A loop still running ``timeout``
        seconds after its cancellation (one that swallowed it, or waits on something that ignores
        it) is logged with its stack and abandoned: a shutdown never hangs on one loop."""
        self._started = False
        tasks = [s._task for _, s in self._loops.values() if s._task is not None]
        if grace > 0 and tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in done:  # retrieved, so asyncio does not warn about it later
                if not task.cancelled():
                    task.exception()
            for task in pending:
                log.error(
                    "background loop did not stop when cancelled; abandoned",
                    extra={
                        "supervisor": self.process,
                        "loop": task.get_name(),
                        "stack": _stack_of(task),
                    },
                )
        for _, status in self._loops.values():
            status._task = None
            status.running = False

    async def __aenter__(self) -> Supervisor:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait(self) -> None:
        """Until every loop has returned on purpose (crashes are restarted, so never for them)."""
        tasks = [s._task for _, s in self._loops.values() if s._task is not None]
        await asyncio.gather(*tasks)

    def beat(self, name: str) -> None:
        """The loop ``name`` made progress: it is neither stale nor failing."""
        status = self._loops[name][1]
        status.last_beat = self._clock()
        status.consecutive_failures = 0
        status.failing = False

    def beater(self, name: str) -> Callable[[], None]:
        """A no-argument callable that beats ``name`` (to hand to the loop's owner)."""
        return lambda: self.beat(name)

    async def _supervise(self, loop: Loop, status: LoopStatus) -> None:
        while True:
            status.running, status.finished = True, False
            status.started_at = self._clock()
            try:
                await loop()
            except asyncio.CancelledError:
                status.running = False
                raise
            except Exception as exc:
                ran_for = self._clock() - status.started_at
                status.running = False
                status.restarts += 1
                # A loop that ran quietly for a long while before crashing starts a new streak.
                if ran_for > self.backoff_max:
                    status.consecutive_failures = 0
                status.consecutive_failures += 1
                status.failing = status.consecutive_failures >= self.failing_after
                status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                delay = self._backoff(status.consecutive_failures)
                log.error(
                    "background loop crashed; restarting",
                    exc_info=exc,
                    extra={
                        "supervisor": self.process,  # not "process": a LogRecord attribute (the pid)
                        "loop": status.name,
                        "restarts": status.restarts,
                        "consecutive_failures": status.consecutive_failures,
                        "retry_in_s": round(delay, 2),
                    },
                )
                for callback in self._on_crash:
                    with contextlib.suppress(Exception):
                        callback(status.name, exc)
                await asyncio.sleep(delay)
                continue
            status.running, status.finished = False, True
            return

    def _backoff(self, failures: int) -> float:
        base = min(self.backoff_max, self.backoff_initial * 2 ** max(0, failures - 1))
        return base * random.uniform(0.8, 1.2)

    # -- health --

    def __iter__(self) -> Iterator[LoopStatus]:
        return iter(status for _, status in self._loops.values())

    @property
    def healthy(self) -> bool:
        """False while any loop is failing or stale."""
        now = self._clock()
        return not any(s.is_failing(now) or s.stale(now) for _, s in self._loops.values())

    def report(self) -> dict[str, dict[str, object]]:
        """Every loop's status, for health endpoints and logs."""
        now = self._clock()
        return {name: status.as_dict(now) for name, (_, status) in self._loops.items()}

    def unhealthy(self) -> list[str]:
        """Names of the loops that make the process unhealthy, with why."""
        now = self._clock()
        out = []
        for name, (_, status) in self._loops.items():
            if status.is_failing(now):
                out.append(f"{name}: failing ({status.last_error})")
            elif status.stale(now):
                out.append(f"{name}: no progress for {status.stale_after:.0f}s")
        return out


def _stack_of(task: asyncio.Task[None]) -> str:
    """Where ``task`` is waiting, innermost frame last (for the log of a loop that would not stop)."""
    buffer = io.StringIO()
    task.print_stack(limit=20, file=buffer)
    return buffer.getvalue()[-4000:]
