"""Group commit for bookings: requests that arrive while a batch is being written go together next.

A booking is one small transaction, and under load much of its cost is the round trip and the commit
(a WAL flush), not the row. :class:`BookingWriter` sends the first request at once, alone; requests that
arrive while that batch is in flight wait for it and then go together as the next batch, in one
``book_slots`` call: one round trip, one transaction, one commit. An idle bot therefore never waits, and
a busy one shares the fixed cost between concurrent customers. While requests keep coming, the writer
keeps its pooled connection, so consecutive batches skip the pool's reset round trip too.

Each request is its own subtransaction on the server, so one request's failure (slot taken, limit
reached, ...) is its own outcome and never touches the others. An error that fails the whole batch (say
a foreign key that vanished under a request) makes the writer send each request of that batch alone, so
it reaches only the request that caused it; errors that are everyone's (the database is down, a
deadlock to retry) go to every request of the batch. A request whose caller is cancelled before its
batch is sent is dropped; one cancelled while its batch is in flight may still be booked, like any
request cut off mid-way (a repeat with the same idempotency key finds it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import asyncpg

from tenant_bot.booking.db import Database
from tenant_bot.booking.errors import BookingError, StorageBusy, StorageUnavailable
from tenant_bot.booking.models import Clock
from tenant_bot.booking.repositories import bookings as repo
from tenant_bot.booking.repositories.bookings import SlotOutcome, SlotRequest

MAX_BATCH = 64

# (request, its deposit (0: none), the caller's future)
_Waiter = tuple[SlotRequest, Decimal, "asyncio.Future[SlotOutcome]"]


class BookingWriter:
    """Writes booking requests through ``book_slots``, batching those that arrive together."""

    def __init__(self, db: Database, *, clock: Clock, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._db = db
        self._clock = clock
        self._max_batch = max_batch
        self._waiting: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, request: SlotRequest, *, deposit: Decimal = Decimal(0)) -> SlotOutcome:
        """The request's (outcome, booking), written alone or with the requests beside it; a
        ``deposit`` makes it a booking awaiting payment (when the business takes payments)."""
        future: asyncio.Future[SlotOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, deposit, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_waiting(), name="booking-writer")
        return await future

    async def _flush_waiting(self) -> None:
        try:
            while self._waiting:
                await self._drain()
        except BaseException:  # cancelled (shutdown): nobody may be left waiting
            for _, _, future in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise
        finally:
            self._flusher = None

    async def _drain(self) -> None:
        """Write batches on one connection for as long as requests keep coming, so a busy writer
        spends no pool round trip (acquire, reset, release) between its batches."""
        batch: list[_Waiter] = []
        try:
            async with self._db.connection() as conn:
                while True:
                    # let callers that the last batch just answered come back first, so the next
                    # batch takes them too (no wait at all: one turn of the event loop)
                    await asyncio.sleep(0)
                    batch = self._next_batch()
                    if not batch:
                        return
                    await self._send(conn, batch)
                    batch = []
        except (StorageBusy, StorageUnavailable) as exc:  # everyone's: each caller decides
            _fail(batch or self._next_batch(), exc)  # (no batch yet: the connection failed)
        except BookingError as exc:
            batch = batch or self._next_batch()
            if len(batch) == 1:
                _fail(batch, exc)
            else:  # find the request that caused it: alone, it fails only itself
                for waiter in batch:
                    await self._write_alone(waiter)
        except BaseException:
            for _, _, future in batch:
                future.cancel()
            raise

    def _next_batch(self) -> list[_Waiter]:
        while self._waiting:
            taken = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            batch = [w for w in taken if not w[2].done()]  # callers cancelled meanwhile: dropped
            if batch:
                return batch
        return []

    async def _write_alone(self, waiter: _Waiter) -> None:
        if waiter[2].done():
            return
        try:
            async with self._db.connection() as conn:
                await self._send(conn, [waiter])
        except BookingError as exc:
            _fail([waiter], exc)

    async def _send(self, conn: asyncpg.Connection, batch: Sequence[_Waiter]) -> None:
        """Write ``batch`` in one ``book_slots`` call and answer each caller still waiting."""
        deposits = [deposit for _, deposit, _ in batch]
        outcomes = await repo.book_slots(
            conn,
            [request for request, _, _ in batch],
            now=self._clock(),
            deposits=deposits if any(deposits) else (),
        )
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)


def _fail(batch: Sequence[_Waiter], exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
