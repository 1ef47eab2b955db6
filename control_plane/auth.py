"""API key authentication, scopes and the per-key rate limit.

Requests carry ``Authorization: Bearer <key>``. A missing or unknown key is 401, a key without a scope
the operation accepts is 403, a key over its rate is 429 with ``Retry-After``. ``admin`` passes every
scope check. Verified keys are trusted in memory for ``api_key_cache_s`` seconds (by hash, never the key
itself), so a revoked key stops working within that time in every API process.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from control_plane.problems import ApiProblem
from control_plane.ratelimit import RateLimiter
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
        self, *, api_keys: ApiKeyService, limiter: RateLimiter | None, cache_s: float = 5.0
    ) -> None:
        self._api_keys = api_keys
        self._limiter = limiter
        self._cache_s = cache_s
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

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
        if not credentials:
            raise ApiProblem(
                401,
                "send an API key as 'Authorization: Bearer <key>'; create one with "
                "`botfleet apikeys create --scope admin`",
                headers=_UNAUTHORIZED_HEADERS,
            )
        key = await self.verify(credentials)
        if key is None:
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
