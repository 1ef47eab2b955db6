"""``Idempotency-Key`` on POST: a retried request gets the first answer instead of running twice.

Keys are scoped to the API key that sent them and kept ``api_idempotency_hours``. The first request with
a key claims it in PostgreSQL under a lease, runs, and stores its answer (any answer below 500; a 5xx or
a crash releases the claim so a retry runs again). Then:

- same key, same request (method, path, canonical JSON body): the stored answer, with
  ``Idempotent-Replayed: true``;
- same key, another request: 422 naming ``Idempotency-Key``;
- same key while the first is still running: the second waits for the first answer (up to
  ``wait_s``), then gets it; if it is still running by then, 409 with ``Retry-After``.

POST routes opt in with an ``Idempotent`` parameter declared after their auth parameter (so the key is
known and 401/403 are never stored), and every router uses :class:`IdempotentRoute`, which stores or
replays the answer around the endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, cast

import asyncpg
from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from control_plane import problems
from control_plane.problems import ApiProblem
from fleet.repositories.idempotency import IdempotencyRepository

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_STORED_HEADERS = ("content-type", "location")


@dataclass(frozen=True)
class Claim:
    """This request owns ``key`` of API key ``api_key_id`` and must store its answer."""

    api_key_id: int
    key: str


class Replay(Exception):
    """Raised by the dependency to answer with a stored response."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


def request_hash(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request; JSON bodies are canonicalised so whitespace and key order do not
    matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


class IdempotencyStore:
    """Claims, stores and replays answers in ``control.idempotency_keys``."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        ttl_s: float,
        lease_s: float = 60.0,
        wait_s: float = 10.0,
        poll_s: float = 0.05,
    ) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._poll_s = poll_s

    async def begin(
        self, *, api_key_id: int, key: str, method: str, path: str, body: bytes
    ) -> Claim | Response:
        """Claim ``key`` for this request, or return the stored answer to replay; raise
        :class:`ApiProblem` when the key cannot be used."""
        repo = IdempotencyRepository(self._pool)
        fingerprint = request_hash(method, path, body)
        deadline = time.monotonic() + self._wait_s
        while True:
            claimed = await repo.claim(
                api_key_id=api_key_id,
                key=key,
                request_hash=fingerprint,
                method=method,
                path=path,
                lease_s=self._lease_s,
                ttl_s=self._ttl_s,
            )
            if claimed is not None:
                return Claim(api_key_id=api_key_id, key=key)
            row = await repo.get(api_key_id=api_key_id, key=key)
            if row is None:
                continue  # released meanwhile: claim again
            if row["request_hash"] != fingerprint:
                raise ApiProblem(
                    422,
                    f"this {HEADER} was already used for a different request "
                    f"({row['method']} {row['path']} with another body); use a new key for a new "
                    "request",
                    errors=[(HEADER, "already used for a different request")],
                )
            if row["status"] == "done":
                return self._stored_response(row)
            if time.monotonic() >= deadline:
                raise ApiProblem(
                    409,
                    f"a request with this {HEADER} is still being processed; retry shortly",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(self._poll_s)

    @staticmethod
    def _stored_response(row: asyncpg.Record) -> Response:
        headers = dict(row["response_headers"] or {})
        headers[REPLAYED_HEADER] = "true"
        return Response(
            content=bytes(row["response_body"] or b""),
            status_code=row["response_status"],
            headers=headers,
        )

    async def finish(self, claim: Claim, response: Response) -> None:
        """Store the answer (or release the claim for a 5xx, so a retry runs again)."""
        if response.status_code >= 500:
            await self.abandon(claim)
            return
        body = getattr(response, "body", None)
        if not isinstance(body, bytes | memoryview):
            await self.abandon(claim)
            return
        headers = {
            name: response.headers[name] for name in _STORED_HEADERS if name in response.headers
        }
        try:
            await IdempotencyRepository(self._pool).complete(
                api_key_id=claim.api_key_id,
                key=claim.key,
                status=response.status_code,
                headers=headers,
                body=bytes(body),
            )
        except (asyncpg.PostgresError, OSError) as exc:
            # The answer still goes out; a retry after the lease runs the request again.
            log.warning("idempotent answer not stored", extra={"error": str(exc)})

    async def abandon(self, claim: Claim) -> None:
        try:
            await IdempotencyRepository(self._pool).release(
                api_key_id=claim.api_key_id, key=claim.key
            )
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("idempotency claim not released", extra={"error": str(exc)})

    async def purge(self) -> int:
        """Delete expired keys (a batch); returns how many."""
        return await IdempotencyRepository(self._pool).purge_expired()


async def idempotency(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique string (a UUID is best): a retried request with the same key "
            "and body gets the first answer instead of running again.",
            examples=["5f0e8a4c-2b9d-4e1a-9c3f-7d6b8a1e2f40"],
        ),
    ] = None,
) -> Claim | None:
    """Claim the request's ``Idempotency-Key`` (after authentication), if it has one."""
    if key is None:
        return None
    api_key = getattr(request.state, "api_key", None)
    if api_key is None:
        raise RuntimeError("Idempotent must be declared after the route's API key parameter")
    store: IdempotencyStore = request.app.state.idempotency
    result = await store.begin(
        api_key_id=api_key.id,
        key=key,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
    )
    if isinstance(result, Response):
        raise Replay(result)
    request.state.idempotency_claim = result
    return result


Idempotent = Annotated[Claim | None, Depends(idempotency)]


class IdempotentRoute(APIRoute):
    """Stores the answer of a request that claimed an ``Idempotency-Key``, and replays stored ones."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # APIRoute always fills ``methods`` (Starlette's Route types it as optional).
        if "POST" not in cast("set[str]", self.methods):
            return handler  # only POST honours Idempotency-Key

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Replay as replay:
                return replay.response
            except Exception as exc:
                claim: Claim | None = getattr(request.state, "idempotency_claim", None)
                if claim is None:
                    raise
                store: IdempotencyStore = request.app.state.idempotency
                expected = problems.response_for(request, exc)
                if expected is None or expected.status_code >= 500:
                    await store.abandon(claim)
                    raise
                await store.finish(claim, expected)
                return expected
            claim = getattr(request.state, "idempotency_claim", None)
            if claim is not None:
                await request.app.state.idempotency.finish(claim, response)
            return response

        return handle
