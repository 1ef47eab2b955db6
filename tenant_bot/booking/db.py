"""The storage boundary: connections and transactions from the tenant's pool, asyncpg errors mapped.

Services ask this object for a connection or a transaction and hand the connection to repository
functions; every asyncpg / OS error raised inside is turned into a :class:`BookingError` here, so no raw
database error ever leaves the core.
"""

from __future__ import annotations

import asyncio
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

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float | None = None) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection in autocommit mode (each statement its own transaction)."""
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except _MAPPED as exc:
            raise map_error(exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside one transaction, committed when the block ends without error."""
        try:
            async with (
                self._pool.acquire(timeout=self._acquire_timeout) as conn,
                conn.transaction(),
            ):
                yield conn
        except _MAPPED as exc:
            raise map_error(exc) from exc

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
