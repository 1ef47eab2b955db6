"""The claim loop: wake on NOTIFY (poll as a fallback), run jobs under a lease, shut down gracefully.

- Up to ``concurrency`` jobs run at once; PostgreSQL guarantees a tenant never has two running.
- A job's lease is extended while it runs; a worker that dies loses its leases and
  :func:`fleet.jobs.recover_expired` (run by every worker now and then) puts those jobs back.
- On stop (SIGTERM) the worker claims nothing more, waits up to ``shutdown_s`` for its jobs, then
  cancels the rest and puts them back in the queue at once.
- The reconciler runs on start and every ``reconcile_interval_s``.
- Its background loops (``jobs``: claim and lease recovery, ``listener``: the LISTEN connection,
  ``reconciler``) run under a :class:`~kit.supervisor.Supervisor`: a loop that raises is logged,
  counted and restarted with backoff, and one that keeps failing or stops making progress turns the
  worker's health red (``botfleet worker``'s ``/readyz``, or the API's in ``botfleet up``).
- A job whose handler raises is isolated: logged once with its id and kind, counted
  (:attr:`Worker.outcomes`), parked as dead at once when retrying cannot help
  (:func:`deploy_worker.provisioning.is_permanent`), else retried with backoff; it never holds up
  other tenants' jobs, and even a failure to record its outcome only lets its lease expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import asyncpg
from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from deploy_worker.errors import PermanentJobError
from deploy_worker.provisioning import is_permanent
from fleet import jobs
from fleet.data_plane import PlatformSenders
from fleet.logs import log_context, mask
from kit.loops import every
from kit.supervisor import Supervisor

log = logging.getLogger(__name__)


class MalformedJob(PermanentJobError):
    """The job cannot run as written (a kind this worker does not know, a payload that fails
    validation): no retry can help and the tenant is not to blame, so the job is parked as dead at
    once and the tenant's state is left alone."""


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
        supervisor: Supervisor | None = None,
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
        self._lost_listener: asyncpg.Connection | None = None
        self._listener_changed = asyncio.Event()
        # Tenant roles can NOTIFY botfleet_jobs too: only the platform's notifications wake us.
        self._senders = PlatformSenders()
        self._sender_checks: set[asyncio.Task[None]] = set()
        self.jobs_done = 0
        self.jobs_failed = 0
        # (kind, outcome) -> count; outcome: done, retry, dead, lost, error (see WorkerCollector)
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.supervisor = supervisor or Supervisor("worker")
        self.supervisor.add("jobs", self._claim_loop, stale_after=max(30.0, 6 * poll_s))
        # LISTEN only wakes the worker early (it polls anyway): no staleness, only crashes count.
        self.supervisor.add("listener", self._listen_loop)
        if reconciler is not None:
            self.supervisor.add(
                "reconciler",
                self._reconcile_loop,
                stale_after=max(300.0, 4 * reconcile_interval_s),
            )

    def stop(self) -> None:
        """Ask the worker to finish (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()
        self._listener_changed.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; then wait for in-flight jobs (bounded) and return."""
        log.info(
            "worker started", extra={"worker_id": self.worker_id, "concurrency": self._concurrency}
        )
        self.supervisor.start()
        try:
            await self._stop.wait()
        finally:
            # The claim and listen loops end on their own once stopped (so a claim is never cut
            # between taking a job and starting it); a reconcile pass in progress is cancelled.
            await self.supervisor.stop(grace=max(1.0, self._poll_s))
            await self._drain()
            await self._unlisten()
            log.info("worker stopped", extra={"worker_id": self.worker_id})

    async def _claim_loop(self) -> None:
        """Claim while there are free slots; recover lost leases now and then. Beats after every
        round in which PostgreSQL answered, so a worker that cannot claim turns stale."""
        next_recover = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            answered = True
            if time.monotonic() >= next_recover:
                next_recover = time.monotonic() + max(1.0, min(self._poll_s, self._lease_s / 2))
                answered = await self._recover()
            answered = await self._fill() and answered
            if answered:
                self.supervisor.beat("jobs")
            await self._idle()

    # -- claiming --------------------------------------------------------------------------------

    async def _fill(self) -> bool:
        """Claim jobs up to the concurrency; False if PostgreSQL did not answer."""
        while len(self._inflight) < self._concurrency and not self._stop.is_set():
            try:
                job = await jobs.claim(
                    self._pool, worker_id=self.worker_id, lease_seconds=self._lease_s
                )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("claim failed", extra={"error": mask(str(exc))[:300]})
                return False
            if job is None:
                return True
            task = asyncio.create_task(self._execute(job), name=f"job-{job['id']}")
            self._inflight[task] = job["id"]
            task.add_done_callback(self._finished)
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()  # a slot is free: claim again

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def _recover(self) -> bool:
        """Put back the jobs of workers whose lease expired; False if PostgreSQL did not answer."""
        try:
            recovered = await jobs.recover_expired(self._pool)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("lease recovery failed", extra={"error": mask(str(exc))[:300]})
            return False
        if recovered:
            log.warning("recovered jobs of a lost worker", extra={"count": recovered})
        return True

    # -- running one job -------------------------------------------------------------------------

    async def _execute(self, job: asyncpg.Record) -> None:
        with log_context(job_id=job["id"], tenant=job["tenant_id"]):
            try:
                await self._run_job(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not the handler (its errors are recorded on the job) but the bookkeeping around
                # it, e.g. PostgreSQL gone mid-job: the lease expires and the job runs again.
                self.outcomes[(job["kind"], "error")] += 1
                log.exception(
                    "job outcome could not be recorded; it runs again when its lease expires",
                    extra={"job_id": job["id"], "kind": job["kind"]},
                )

    async def _run_job(self, job: asyncpg.Record) -> None:
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
            self.outcomes[(job["kind"], "done")] += 1
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
        # A malformed job is the job's fault, not the tenant's: it is parked, the tenant untouched.
        blames_tenant = not isinstance(exc, MalformedJob)
        # The tenant learns of a final failure while the job still runs: had the job been marked
        # dead first, a reconcile pass in between would see a tenant still "provisioning" with no
        # job, queue another and fail it again (a second tenant.failed for the owner).
        if (
            final
            and blames_tenant
            and not await self._record_final_failure(job, error, permanent=permanent)
        ):
            self.outcomes[(job["kind"], "lost")] += 1
            return
        try:
            status = await jobs.fail(
                self._pool, job, error, retry=not permanent, worker_id=self.worker_id
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            self.outcomes[(job["kind"], "error")] += 1
            log.exception(
                "cannot record the job failure; its lease will expire",
                extra={"job_id": job["id"], "kind": job["kind"], "error": error[:500]},
            )
            return
        final = status == "dead"  # as predicted above, unless the job was lost meanwhile
        self.outcomes[(job["kind"], {"dead": "dead", "lost": "lost"}.get(status, "retry"))] += 1
        log.log(
            logging.ERROR if final else logging.WARNING,
            "job failed",
            extra={
                "job_id": job["id"],
                "kind": job["kind"],
                "attempt": job["attempts"],
                "error": error[:500],
                "status": status,
                "permanent": permanent,
            },
            exc_info=not _expected(exc),
        )
        if status == "lost" or final or not blames_tenant:  # final: recorded above
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

    async def _listen_loop(self) -> None:
        """Keep one pooled connection LISTENing so queued jobs wake the worker at once; while it
        is down the claim loop still polls every ``poll_s``."""
        try:
            while not self._stop.is_set():
                await self._release_lost()
                if self._listener is None:
                    await self._listen()
                if self._listener is not None:
                    self.supervisor.beat("listener")
                self._listener_changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._listener_changed.wait(), self._poll_s)
        except BaseException:
            await self._unlisten()  # a restarted loop starts from a clean connection
            raise

    async def _listen(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            conn = await self._pool.acquire()
            await conn.add_listener(jobs.NOTIFY_CHANNEL, self._notified)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning("LISTEN unavailable; polling", extra={"error": mask(str(exc))[:300]})
            if conn is not None:
                with contextlib.suppress(Exception):
                    await self._pool.release(conn)
            return
        conn.add_termination_listener(self._listener_lost)
        self._listener = conn
        self._wake.set()  # jobs queued while nobody listened: claim them now

    def _notified(self, conn: asyncpg.Connection, pid: int, *_: object) -> None:
        verdict = self._senders.known(pid)
        if verdict:
            self._wake.set()
        elif verdict is None:
            task = asyncio.get_running_loop().create_task(self._wake_if_platform(conn, pid))
            self._sender_checks.add(task)
            task.add_done_callback(self._sender_checks.discard)

    async def _wake_if_platform(self, conn: asyncpg.Connection, pid: int) -> None:
        """Wake only for a sender of the platform's; one already gone cannot be told from a tenant
        and is ignored (the claim loop polls every ``poll_s`` anyway)."""
        if conn is not self._listener:
            return
        with contextlib.suppress(
            asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError
        ):
            if await self._senders.check(conn, pid):
                self._wake.set()

    def _listener_lost(self, conn: asyncpg.Connection) -> None:
        log.warning("LISTEN connection lost; polling until it is back")
        if self._listener is conn:
            self._listener, self._lost_listener = None, conn
        self._listener_changed.set()

    async def _release_lost(self) -> None:
        conn, self._lost_listener = self._lost_listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    async def _unlisten(self) -> None:
        await self._release_lost()
        conn, self._listener = self._listener, None
        if conn is None:
            return
        conn.remove_termination_listener(self._listener_lost)  # closing it now is expected
        for task in list(self._sender_checks):
            task.cancel()
        with contextlib.suppress(Exception):
            await conn.remove_listener(jobs.NOTIFY_CHANNEL, self._notified)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    # -- reconciling -----------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        """A pass now and every ``reconcile_interval_s``; a pass that raises is the supervisor's
        to log, count and retry with backoff."""
        assert self._reconciler is not None
        await every(
            self._reconcile_interval_s,
            self._reconciler.run_once,
            stop=self._stop,
            on_tick=self.supervisor.beater("reconciler"),
        )


class WorkerCollector(Collector):
    """``botfleet_worker_jobs_total{kind,outcome}``: jobs this worker finished, by outcome (done;
    retry: failed, queued again with backoff; dead: failed for good; lost: its lease went to
    another worker; error: its outcome could not be recorded). With a ``runtime`` that warms images
    (docker), ``botfleet_worker_image_warm_ups{outcome}``: warm-up containers run (ok, failed).
    With a ``converger``, ``botfleet_worker_provision_step_seconds{step}`` (a summary: count and
    sum): how long each provisioning step took, e.g. ``runtime`` (the container created and
    started) against ``heartbeat`` (the bot starting up until ready). Read at scrape time."""

    def __init__(
        self, worker: Worker, runtime: object | None = None, converger: object | None = None
    ) -> None:
        self._worker = worker
        self._runtime = runtime
        self._converger = converger

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "botfleet_worker_jobs", "Jobs run by this worker, by kind and outcome",
            labels=["kind", "outcome"],
        )  # fmt: skip
        for (kind, outcome), count in sorted(self._worker.outcomes.items()):
            family.add_metric([kind, outcome], float(count))
        yield family
        if self._runtime is not None and hasattr(self._runtime, "warm_ups"):
            warm = CounterMetricFamily(
                "botfleet_worker_image_warm_ups",
                "Image warm-up containers run before an image's first tenant, by outcome",
                labels=["outcome"],
            )
            warm.add_metric(["ok"], float(getattr(self._runtime, "warm_ups", 0)))
            warm.add_metric(["failed"], float(getattr(self._runtime, "warm_up_failures", 0)))
            yield warm
        step_seconds = getattr(self._converger, "step_seconds", None)
        step_count = getattr(self._converger, "step_count", None)
        if step_seconds is not None and step_count is not None:
            steps = SummaryMetricFamily(
                "botfleet_worker_provision_step_seconds",
                "Seconds each provisioning step took (token, data_plane, spec, runtime, heartbeat, live)",
                labels=["step"],
            )
            for step in sorted(step_count):
                steps.add_metric([step], step_count[step], float(step_seconds[step]))
            yield steps


def _expected(exc: Exception) -> bool:
    from fleet.errors import BotfleetError

    return isinstance(exc, BotfleetError)
