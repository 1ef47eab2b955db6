"""API key authentication, scopes and the per-key rate limit.

Requests carry ``Authorization: Bearer <key>``. A missing or unknown key is 401, a key without a scope
the operation accepts is 403, a key over its rate is 429 with ``Retry-After``. ``admin`` passes every
scope check. Verified keys are trusted in memory for ``api_key_cache_s`` seconds (by hash, never the key
itself), so a revoked key stops working within that time in every API process.

Failed attempts are throttled per client address (IPv6: per /64): after ``BOTFLEET_API_AUTH_FAILURE_LIMIT``
unknown keys (default 20/minute), every request from that address is 429 with ``Retry-After`` before
its key is looked at, so guessing keys costs the guesser time and us nothing. The count is shared by
every API process in Redis (``<installation>:bf:ratelimit/authfail:<address>``); a process that saw an address
refused also refuses it from memory until ``Retry-After`` passes. A key this process already verified
skips the Redis look-up (legitimate traffic pays nothing), so other addresses are never affected.
The client address is the one :class:`control_plane.middleware.EdgeGuard` decided (trusted proxies
only). The throttle is on where :func:`control_plane.middleware.install_edge` set its rate (``botfleet
api``, ``botfleet up``).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from control_plane.problems import ApiProblem
from control_plane.ratelimit import KEY_PREFIX, RateLimiter
from fleet.apikeys import ApiKey, ApiKeyService, hash_key

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `botfleet apikeys create`, sent as `Authorization: Bearer <key>`",
)

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="botfleet"'}


class Authenticator:
    """Verifies keys (with a short in-memory cache) and applies the rate limit."""

    _MAX_CACHED = 10_000

    def __init__(
        self,
        *,
        api_keys: ApiKeyService,
        limiter: RateLimiter | None,
        cache_s: float = 5.0,
        failures: RateLimiter | None = None,
    ) -> None:
        self._api_keys = api_keys
        self._limiter = limiter
        self._cache_s = cache_s
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._failures = failures
        self._failures_resolved = failures is not None
        self._blocked: dict[str, float] = {}  # address -> monotonic time its 429s end

    def _failure_limiter(self, request: Request) -> RateLimiter | None:
        """The limiter of failed attempts: given, or built once from the app's Redis client and
        the rate :func:`control_plane.middleware.install_edge` set; None when off."""
        if not self._failures_resolved:
            state = request.app.state
            rate: str | None = getattr(state, "auth_failure_limit", None)
            redis = getattr(state, "redis", None)
            if rate and redis is not None:
                key = getattr(state, "ratelimit_key", KEY_PREFIX)
                self._failures = RateLimiter(redis=redis, rate=rate, key_prefix=key)
            self._failures_resolved = True
        return self._failures

    def _still_blocked(self, address: str) -> int:
        """Seconds this process still refuses ``address`` (0: not refused)."""
        until = self._blocked.get(address)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            self._blocked.pop(address, None)
            return 0
        return max(1, int(left + 0.999))

    def _block(self, address: str, seconds: int) -> ApiProblem:
        if len(self._blocked) >= self._MAX_CACHED:
            self._blocked.clear()
        self._blocked[address] = time.monotonic() + seconds
        return _too_many_failures(seconds)

    def _known_good(self, key: str) -> bool:
        cached = self._cache.get(hash_key(key))
        return cached is not None and cached[0] is not None and cached[1] > time.monotonic()

    async def verify(self, key: str) -> ApiKey | None:
        """The active API key ``key`` is, or None."""
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await self._api_keys.verify(key, touch_interval_s=max(60.0, self._cache_s))
        if self._cache_s > 0:
            if len(self._cache) >= self._MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (found, now + self._cache_s)
        return found

    async def authenticate(self, request: Request, credentials: str | None) -> ApiKey:
        """The caller's key, rate limit applied; :class:`ApiProblem` 401/429 otherwise."""
        failures = self._failure_limiter(request)
        address = client_address(request) if failures is not None else ""
        if failures is not None:
            wait = self._still_blocked(address)
            if wait:
                raise _too_many_failures(wait)
        if not credentials:
            raise ApiProblem(
                401,
                "send an API key as 'Authorization: Bearer <key>'; create one with "
                "`botfleet apikeys create --scope admin`",
                headers=_UNAUTHORIZED_HEADERS,
            )
        if failures is not None and not self._known_good(credentials):
            refused = await failures.peek(f"{FAILURE_PREFIX}{address}")
            if not refused.allowed:
                raise self._block(address, refused.retry_after_s)
        key = await self.verify(credentials)
        if key is None:
            if failures is not None:
                counted = await failures.hit(f"{FAILURE_PREFIX}{address}")
                if not counted.allowed:
                    raise self._block(address, counted.retry_after_s)
            raise ApiProblem(
                401,
                "the API key is unknown or revoked; check it or create a new one with "
                "`botfleet apikeys create`",
                headers=_UNAUTHORIZED_HEADERS,
            )
        request.state.api_key = key
        if self._limiter is not None:
            decision = await self._limiter.hit(f"apikey:{key.id}")
            if not decision.allowed:
                raise ApiProblem(
                    429,
                    f"this API key exceeded its rate of {self._limiter.rate}; retry after "
                    f"{decision.retry_after_s} s",
                    headers={"Retry-After": str(decision.retry_after_s)},
                )
        return key


FAILURE_PREFIX = "authfail:"


def client_address(request: Request) -> str:
    """Whom failed attempts are counted against: the client's address, an IPv6 one as its /64
    (one host usually holds the whole /64)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _too_many_failures(retry_after_s: int) -> ApiProblem:
    return ApiProblem(
        429,
        f"too many failed API-key attempts from this address; retry after {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


class ScopedKey(HTTPBearer):
    """The dependency admitting keys with ``admin`` or any of ``scopes``: reads the bearer key,
    authenticates it (rate limit included) and checks the scope in one step. It is the ``ApiKey``
    security scheme itself, so OpenAPI documents it as before, while FastAPI resolves one dependency
    per request instead of two (each costs tens of microseconds)."""

    def __init__(self, *scopes: str) -> None:
        super().__init__(
            auto_error=False,
            scheme_name=bearer.scheme_name,
            description=bearer.model.description,
        )
        self.accepted = ("admin", *scopes)
        self.__name__ = "require_" + "_or_".join(self.accepted)

    # As a FastAPI dependency it yields the API key, not HTTPBearer's credentials model; the
    # subclass is kept for its OpenAPI security scheme.
    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        # HTTPBearer's own parsing, without building its credentials model.
        scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
        authenticator: Authenticator = request.app.state.authenticator
        key = await authenticator.authenticate(
            request, credentials if scheme.lower() == "bearer" else None
        )
        if not any(scope in key.scopes for scope in self.accepted):
            raise ApiProblem(
                403,
                f"this API key has scope {', '.join(key.scopes)}; this operation needs "
                f"{' or '.join(self.accepted)}",
            )
        return key


def require_scopes(*scopes: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency admitting keys with ``admin`` or any of ``scopes``."""
    return ScopedKey(*scopes)
