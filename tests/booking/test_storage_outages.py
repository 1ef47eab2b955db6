"""What the storage boundary makes of "the database is away": PostgreSQL's own errors and those
PgBouncer sends for it (SQLSTATE 08P01, or a connection closed with its message) are all
``StorageUnavailable`` (the user is told to try again in a minute), told apart by cause for the
heartbeat's count: ``pooler``, ``database`` or ``timeout``."""

from __future__ import annotations

import asyncpg
import pytest

from tenant_bot.booking.db import StorageOutages, map_error, unavailable_cause
from tenant_bot.booking.errors import StorageBusy, StorageUnavailable


@pytest.mark.parametrize(
    "message",
    [
        "server login has been failing, try again later (server_login_retry)",
        "query_wait_timeout",
        "pgbouncer cannot connect to server",
        "no more connections allowed (max_client_conn)",
        "server conn crashed?",
    ],
)
def test_pgbouncer_errors_are_the_pooler_saying_the_database_is_away(message: str) -> None:
    error = asyncpg.ProtocolViolationError(message)  # PgBouncer 1.18: ErrorResponse 08P01
    assert isinstance(map_error(error), StorageUnavailable)
    assert unavailable_cause(error) == "pooler"


def test_a_connection_the_pooler_closed_mid_query_names_the_pooler() -> None:
    # asyncpg's own error once PgBouncer dropped a client that waited past query_wait_timeout
    closed = asyncpg.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation: query_wait_timeout"
    )
    assert isinstance(map_error(closed), StorageUnavailable)
    assert unavailable_cause(closed) == "pooler"
    # ... and through a chain of causes
    try:
        try:
            raise asyncpg.ProtocolViolationError("query_wait_timeout")
        except asyncpg.ProtocolViolationError as first:
            raise asyncpg.InterfaceError("connection is closed") from first
    except asyncpg.InterfaceError as wrapped:
        assert unavailable_cause(wrapped) == "pooler"


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_postgresql_itself_away_is_the_database(error: BaseException) -> None:
    assert isinstance(map_error(error), StorageUnavailable)
    assert unavailable_cause(error) == "database"


def test_a_wait_that_ran_out_is_a_timeout_and_a_collision_is_no_outage() -> None:
    assert unavailable_cause(TimeoutError()) == "timeout"
    assert isinstance(map_error(asyncpg.DeadlockDetectedError("deadlock")), StorageBusy)


def test_outages_are_counted_by_cause() -> None:
    outages = StorageOutages()
    for cause in ("pooler", "database", "pooler"):
        outages.note(cause)
    assert outages.snapshot() == {"pooler": 2, "database": 1}
