"""The claim loop: wake on NOTIFY (poll as a fallback), run jobs under a lease, shut down gracefully.

- Up to ``concurrency`` jobs run at once; PostgreSQL guarantees a tenant never has two running.
- A job's lease is extended while it runs; a worker that dies loses its leases and
  :func:`fleet.jobs.recover_expired` (run by every worker now and then) puts those jobs back.
- On stop (SIGTERM) the worker claims nothing more, waits up to ``shutdown_s`` for its jobs, then
  cancels the rest and puts them back in the queue at once.
- The reconciler runs on start and every ``reconcile_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Any, Protocol

import asyncpg

from deploy_worker.provisioning import is_permanent
from fleet import jobs
from fleet.logs import log_context, mask

log = logging.getLogger(__name__)


class Handler(Protocol):
    async def run(self, job: Mapping[str, Any]) -> str: ...

    async def failed(
        self, job: Mapping[str, Any], error: str, *, final: bool, permanent: bool
    ) -> None: ...


class Reconciles(Protocol):
    async def run_once(self) -> Any: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Claims and runs jobs until stopped."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        handler: Handler,
        reconciler: Reconciles | None = None,
        worker_id: str | None = None,
        concurrency: int = 8,
        lease_s: float = 60.0,
        poll_s: float = 5.0,
        reconcile_interval_s: float = 30.0,
        shutdown_s: float = 30.0,
    ) -> None:
        self._pool = pool
        self._handler = handler
        self._reconciler = reconciler
        self.worker_id = worker_id or default_worker_id()
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._reconcile_interval_s = reconcile_interval_s
        self._shutdown_s = shutdown_s
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], int] = {}
        self._listener: asyncpg.Connection | None = None
        self.jobs_done = 0
        self.jobs_failed = 0

    def stop(self) -> None:
        """Ask the worker to finish (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; then wait for in-flight jobs (bounded) and return."""
        log.info(
            "worker started", extra={"worker_id": self.worker_id, "concurrency": self._concurrency}
        )
        reconcile_task = (
            asyncio.create_task(self._reconcile_loop(), name="reconciler")
            if self._reconciler
            else None
        )
        await self._listen()
        next_recover = 0.0
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if time.monotonic() >= next_recover:
                    next_recover = time.monotonic() + max(1.0, min(self._poll_s, self._lease_s / 2))
                    await self._recover()
                await self._fill()
                await self._idle()
        finally:
            if reconcile_task is not None:
                reconcile_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reconcile_task
            await self._drain()
            await self._unlisten()
            log.info("worker stopped", extra={"worker_id": self.worker_id})

    # -- claiming --------------------------------------------------------------------------------

    async def _fill(self) -> None:
        while len(self._inflight) < self._concurrency and not self._stop.is_set():
            try:
                job = await jobs.claim(
                    self._pool, worker_id=self.worker_id, lease_seconds=self._lease_s
                )
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("claim failed", extra={"error": mask(str(exc))[:300]})
                return
            if job is None:
                return
            task = asyncio.create_task(self._execute(job), name=f"job-{job['id']}")
            self._inflight[task] = job["id"]
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()  # a slot is free: claim again

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def _recover(self) -> None:
        try:
            recovered = await jobs.recover_expired(self._pool)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("lease recovery failed", extra={"error": mask(str(exc))[:300]})
            return
        if recovered:
            log.warning("recovered jobs of a lost worker", extra={"count": recovered})

    # -- running one job -------------------------------------------------------------------------

    async def _execute(self, job: asyncpg.Record) -> None:
        with log_context(job_id=job["id"], tenant=job["tenant_id"]):
            log.info("job started", extra={"kind": job["kind"], "attempt": job["attempts"]})
            lease = asyncio.create_task(self._keep_lease(job["id"]), name=f"lease-{job['id']}")
            started = time.monotonic()
            try:
                outcome = await self._handler.run(job)
            except asyncio.CancelledError:
                await self._release(job)
                raise
            except Exception as exc:
                await self._failed(job, exc)
            else:
                await jobs.complete(self._pool, job["id"], worker_id=self.worker_id)
                self.jobs_done += 1
                log.info(
                    "job done",
                    extra={
                        "kind": job["kind"],
                        "outcome": outcome,
                        "duration_s": round(time.monotonic() - started, 3),
                    },
                )
            finally:
                lease.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lease

    async def _failed(self, job: asyncpg.Record, exc: Exception) -> None:
        permanent = is_permanent(exc)
        error = mask(str(exc) or type(exc).__name__)
        self.jobs_failed += 1
        final = permanent or job["attempts"] >= job["max_attempts"]
        # The tenant learns of a final failure while the job still runs: had the job been marked
        # dead first, a reconcile pass in between would see a tenant still "provisioning" with no
        # job, queue another and fail it again (a second tenant.failed for the owner).
        if final and not await self._record_final_failure(job, error, permanent=permanent):
            return
        try:
            status = await jobs.fail(
                self._pool, job, error, retry=not permanent, worker_id=self.worker_id
            )
        except (asyncpg.PostgresError, OSError):
            log.exception("cannot record the job failure; its lease will expire")
            return
        final = status == "dead"  # as predicted above, unless the job was lost meanwhile
        log.log(
            logging.ERROR if final else logging.WARNING,
            "job failed",
            extra={
                "kind": job["kind"],
                "error": error[:500],
                "status": status,
                "permanent": permanent,
            },
            exc_info=not _expected(exc),
        )
        if status == "lost" or final:  # a final failure was recorded on the tenant above
            return
        try:
            await self._handler.failed(job, error, final=False, permanent=permanent)
        except Exception:
            log.exception("recording the failure on the tenant failed")

    async def _record_final_failure(
        self, job: asyncpg.Record, error: str, *, permanent: bool
    ) -> bool:
        """Put a job's final failure on its tenant; False if the job is no longer ours."""
        if not await jobs.extend_lease(
            self._pool, job["id"], worker_id=self.worker_id, seconds=self._lease_s
        ):
            log.warning("job lost its lease before its failure was recorded")
            return False
        try:
            await self._handler.failed(job, error, final=True, permanent=permanent)
        except Exception:
            log.exception("recording the failure on the tenant failed")
        return True

    async def _release(self, job: asyncpg.Record) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(jobs.release(self._pool, job["id"], worker_id=self.worker_id))
            log.warning(
                "job interrupted by shutdown; back in the queue", extra={"kind": job["kind"]}
            )

    async def _keep_lease(self, job_id: int) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                ours = await jobs.extend_lease(
                    self._pool, job_id, worker_id=self.worker_id, seconds=self._lease_s
                )
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("lease extension failed", extra={"error": mask(str(exc))[:300]})
                continue
            if not ours:
                log.error("job lease lost to another worker", extra={"job_id": job_id})
                return

    async def _drain(self) -> None:
        if not self._inflight:
            return
        log.info(
            "waiting for running jobs",
            extra={"count": len(self._inflight), "timeout_s": self._shutdown_s},
        )
        _, pending = await asyncio.wait(list(self._inflight), timeout=self._shutdown_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)

    # -- LISTEN / NOTIFY -------------------------------------------------------------------------

    async def _listen(self) -> None:
        try:
            conn = await self._pool.acquire()
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("LISTEN unavailable; polling", extra={"error": mask(str(exc))[:300]})
            return
        await conn.add_listener(jobs.NOTIFY_CHANNEL, self._notified)
        conn.add_termination_listener(self._listener_lost)
        self._listener = conn

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _listener_lost(self, *_: object) -> None:
        log.warning("LISTEN connection lost; polling until it is back")
        self._listener = None
        if not self._stop.is_set():
            asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        while not self._stop.is_set() and self._listener is None:
            await asyncio.sleep(self._poll_s)
            await self._listen()

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        conn.remove_termination_listener(self._listener_lost)  # closing it now is expected
        with contextlib.suppress(Exception):
            await conn.remove_listener(jobs.NOTIFY_CHANNEL, self._notified)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    # -- reconciling -----------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        assert self._reconciler is not None
        while not self._stop.is_set():
            try:
                await self._reconciler.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._reconcile_interval_s)


def _expected(exc: Exception) -> bool:
    from fleet.errors import BotfleetError

    return isinstance(exc, BotfleetError)
