"""The storage boundary: connections and transactions from the tenant's pool, asyncpg errors mapped.

Services ask this object for a connection or a transaction and hand the connection to repository
functions; every asyncpg / OS error raised inside is turned into a :class:`BookingError` here, so no raw
database error ever leaves the core.

"The database cannot be reached" has two sources: PostgreSQL itself (a refused connect, a connection
closed by a shutdown) and, for a bot behind PgBouncer, the pooler saying so for it. PgBouncer 1.18
answers with its own ``ErrorResponse`` (SQLSTATE 08P01, asyncpg's ``ProtocolViolationError``, or a
connection closed with the message): "server login has been failing, try again later
(server_login_retry)", "query_wait_timeout", "pgbouncer cannot connect to server", "no more
connections allowed". Both are :class:`StorageUnavailable` (the user is told to try again in a
minute), each one logged and counted by cause (:class:`StorageOutages`, in the heartbeat).

Behind the pooler a bot's idle connections stay open while PostgreSQL is away (they are connections
to PgBouncer), and a query sent on one waits in PgBouncer's queue up to its ``query_wait_timeout``
before it fails. So after such a failure the pool's connections are expired: the next request opens a
fresh one, which PgBouncer refuses at once while its server logins fail (its "fast fail") and serves
at once when PostgreSQL is back: one slow answer per outage, not one per request.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg

from tenant_bot.booking.errors import (
    BookingError,
    Conflict,
    InvalidInput,
    NotFound,
    SlotTaken,
    StorageBusy,
    StorageError,
    StorageUnavailable,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
BUSY_RETRIES = 8
# PgBouncer's "fast fail" of a new client while its server logins fail (Database._acquire): tried
# again this many times, this long apart (just over the pooler's server_login_retry, 1 s, so each
# try finds a server login attempted since the last one).
LOGIN_REFUSED = "server login has been failing"
LOGIN_RETRIES = 2
LOGIN_RETRY_PAUSE_S = 1.1

# Constraint name -> what it means to the caller. Exclusion and unique violations are expected races.
_CONSTRAINT_ERRORS: dict[str, type[BookingError]] = {
    "bookings_one_session": SlotTaken,
    "bookings_one_seat_idx": SlotTaken,
    "bookings_idempotency_key_idx": Conflict,
    "customers_telegram_user_id_key": Conflict,
    "waitlist_one_wish_idx": Conflict,
    "working_hours_no_overlap": Conflict,
    "staff_services_pkey": Conflict,
}

_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


# What PgBouncer says when it cannot serve a client (its own error texts; 1.18 sends them as 08P01,
# newer versions with other SQLSTATEs, so the text decides).
POOLER_MESSAGES = (
    "server login has been failing",
    "query_wait_timeout",
    "pgbouncer cannot connect to server",
    "no more connections allowed",
    "server conn crashed",
    "client_login_timeout",
    "server shutting down",
    "bouncer config error",
)


def unavailable_cause(exc: BaseException) -> str:
    """``pooler`` when PgBouncer refused the request (its message, anywhere in the chain of causes),
    ``timeout`` for a wait that ran out in the bot (its pool full or a connect too slow), else
    ``database`` (PostgreSQL refused or dropped the connection)."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if any(message in text for message in POOLER_MESSAGES):
            return "pooler"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "database"


class StorageOutages:
    """How many requests found the database unavailable, by cause (``database``, ``pooler``,
    ``timeout``; and ``redis``, noted by the bot's error reporter for an update that found Redis
    away) since the bot started: the heartbeat carries it, the control plane's ``/metrics``
    sums it over the live bots (``botfleet_tenant_storage_unavailable{cause}``)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def note(self, cause: str) -> None:
        self.counts[cause] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


def map_error(exc: BaseException) -> BookingError:
    """The domain error for a low-level one (the caller raises it ``from exc``)."""
    if isinstance(exc, BookingError):
        return exc
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        constraint = getattr(exc, "constraint_name", None) or ""
        kind = _CONSTRAINT_ERRORS.get(constraint)
        if kind is not None:
            return kind(f"conflicts with existing data ({constraint})", constraint=constraint)
        if isinstance(exc, asyncpg.ForeignKeyViolationError):
            return NotFound("a referenced record does not exist", entity=constraint)
        if isinstance(exc, asyncpg.CheckViolationError | asyncpg.NotNullViolationError):
            return InvalidInput(constraint or "value", "is out of the allowed range")
        if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.ExclusionViolationError):
            return Conflict(f"conflicts with existing data ({constraint})", constraint=constraint)
    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        # Two inserters of conflicting rows can wait on each other through the exclusion constraint;
        # PostgreSQL aborts one. It is transient: a retry sees the survivor's outcome.
        return StorageBusy("concurrent requests collided; try again")
    if isinstance(exc, asyncpg.DataError):
        return InvalidInput("value", str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return StorageUnavailable("the database cannot be reached; try again shortly")
    log.error("unexpected database error", extra={"error": type(exc).__name__, "detail": str(exc)})
    return StorageError(f"unexpected database error: {type(exc).__name__}")


# InternalClientError (a driver bug or an undecodable value) derives from neither of the above.
_MAPPED = (asyncpg.PostgresError, asyncpg.exceptions.InternalClientError, *_UNAVAILABLE)


class Database:
    """Hands out connections/transactions of the tenant's pool with errors mapped to the domain.

    ``acquire_timeout`` bounds the wait for a connection when the pool is at its maximum (or a new
    one is slow to open): past it the caller gets :class:`StorageUnavailable` (the bot tells the
    user to try again in a minute) instead of waiting without end. None waits as long as it takes.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        acquire_timeout: float | None = None,
        outages: StorageOutages | None = None,
    ) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self.outages = outages if outages is not None else StorageOutages()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection in autocommit mode (each statement its own transaction)."""
        try:
            conn = await self._acquire()
            try:
                yield conn
            finally:
                await self._pool.release(conn)
        except _MAPPED as exc:
            raise await self._mapped(exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside one transaction, committed when the block ends without error."""
        try:
            conn = await self._acquire()
            try:
                async with conn.transaction():
                    yield conn
            finally:
                await self._pool.release(conn)
        except _MAPPED as exc:
            raise await self._mapped(exc) from exc

    async def _acquire(self) -> asyncpg.Connection:
        """A connection of the pool; a login the pooler refused is tried again (nothing was sent).

        PgBouncer refuses a new client at once ("server login has been failing") while its last
        server login failed and it holds no server connection, and only then tries a server login
        again (at most every ``server_login_retry``). Right after PostgreSQL is back, the first
        request would be told "unavailable" although the next one a moment later is served; so a
        refused login is tried again after :data:`LOGIN_RETRY_PAUSE_S`, up to
        :data:`LOGIN_RETRIES` times: the first Confirm after a restart books. While PostgreSQL is
        still away this adds those pauses before the user is told (about 2 s)."""
        for attempt in range(LOGIN_RETRIES + 1):
            try:
                conn: asyncpg.Connection = await self._pool.acquire(timeout=self._acquire_timeout)
                return conn
            except asyncpg.PostgresConnectionError as exc:
                if attempt == LOGIN_RETRIES or LOGIN_REFUSED not in str(exc):
                    raise
                log.info("pooler refused a login; trying again", extra={"attempt": attempt + 1})
                await asyncio.sleep(LOGIN_RETRY_PAUSE_S)
        raise AssertionError("unreachable")

    async def _mapped(self, exc: BaseException) -> BookingError:
        """:func:`map_error`, and for an unavailable database: logged, counted, and (unless the bot's
        own pool was merely busy) the pool's connections expired, so the next request does not wait
        on a connection that can no longer be served (see the module docstring)."""
        error = map_error(exc)
        if isinstance(error, StorageUnavailable) and not isinstance(error, StorageBusy):
            cause = unavailable_cause(exc)
            self.outages.note(cause)
            log.warning(
                "database unavailable",
                extra={"cause": cause, "error": type(exc).__name__, "detail": str(exc)[:200]},
            )
            if cause != "timeout":
                await self._pool.expire_connections()
        return error

    @staticmethod
    @asynccontextmanager
    async def savepoint(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
        """A savepoint in the current transaction: an error rolls back only the block's work."""
        try:
            async with conn.transaction():
                yield conn
        except _MAPPED as exc:
            raise map_error(exc) from exc


async def retry_busy(operation: Callable[[], Awaitable[T]], *, attempts: int = BUSY_RETRIES) -> T:
    """Run ``operation``, again after a short random pause while it raises :class:`StorageBusy`."""
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except StorageBusy:
            if attempt == attempts:
                raise
            # jitter spreads the colliding requests apart, so the retry rarely collides again
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))
    raise AssertionError("unreachable")
