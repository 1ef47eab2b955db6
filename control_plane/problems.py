"""Errors as RFC 9457 ``application/problem+json``: ``type``, ``title``, ``status``, ``detail``,
``instance``, the ``request_id``, and for validation problems ``errors: [{field, message}]``.

Platform errors map by class (:data:`ERROR_STATUS`); an error class outside the map may carry its own
HTTP ``status`` attribute. Anything else is a 500 whose details go to the log, never to the client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleet.errors import (
    BotfleetError,
    ConflictError,
    NotFoundError,
    ServiceUnavailable,
    ValidationError,
)
from schemas.api import Problem

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:botfleet:problem:"

# error class -> (status, type suffix, title); the nearest class in the MRO wins.
ERROR_STATUS: dict[type[BaseException], tuple[int, str, str]] = {
    ValidationError: (422, "validation", "Invalid request"),
    ConflictError: (409, "conflict", "Conflict with the current state"),
    NotFoundError: (404, "not-found", "Not found"),
    ServiceUnavailable: (503, "unavailable", "Service unavailable"),
}

_FIELD_PART = re.compile(r"^[A-Za-z0-9_]+$")
_TYPE_TAGS = frozenset(
    {"str", "int", "float", "bool", "none", "decimal", "bytes", "list", "dict", "uuid"}
)
_HTTP_KINDS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict with the current state"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "Invalid request"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ApiProblem(Exception):
    """Raised by the API layer itself (auth, rate limit, idempotency) to answer with a problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        default_kind, default_title = _HTTP_KINDS.get(status, ("error", "Error"))
        self.status = status
        self.detail = detail
        self.kind = kind or default_kind
        self.title = title or default_title
        self.headers = dict(headers or {})
        self.errors = list(errors or [])


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(
    request: Request,
    *,
    status: int,
    detail: str,
    kind: str | None = None,
    title: str | None = None,
    errors: Sequence[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """Build the problem answer for ``request``."""
    default_kind, default_title = _HTTP_KINDS.get(status, ("error", "Error"))
    body = Problem(
        type=TYPE_PREFIX + (kind or default_kind),
        title=title or default_title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=request_id_of(request),
        errors=[{"field": f, "message": m} for f, m in errors] if errors else None,
    )
    return ProblemResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def _field_of(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts[:1]
    # Later parts may name a union branch ("constrained-str", "list[int]", "decimal"): not a field.
    kept = [
        str(p)
        for i, p in enumerate(parts)
        if i == 0 or (_FIELD_PART.fullmatch(str(p)) and str(p) not in _TYPE_TAGS)
    ]
    return ".".join(kept) or "body"


def _message_of(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request; remove it"
    if kind == "json_invalid":
        return "the body is not valid JSON: " + str(error.get("ctx", {}).get("error", message))
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern == r"^[a-z][a-z0-9_]{2,30}$":
            return (
                "must match ^[a-z][a-z0-9_]{2,30}$ (a lowercase letter, then 2-30 lowercase "
                "letters, digits or '_'), e.g. barber_ivan"
            )
        return f"must match {pattern}"
    return message


def validation_errors(exc: RequestValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` for every invalid input; never echoes the input (it may be a token).

    A field that may be omitted but not null fails every branch of its type; only the useful
    message is kept."""
    found: dict[str, list[tuple[str, str]]] = {}
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "none_required" and loc[-1:] == ("none",):
            loc = loc[:-1]
        field = _field_of(loc)
        found.setdefault(field, []).append((error.get("type", ""), _message_of(error)))
    result: list[tuple[str, str]] = []
    for field, errors in found.items():
        useful = [m for kind, m in errors if kind != "none_required"] or [m for _, m in errors]
        result.extend((field, message) for message in dict.fromkeys(useful))
    return result


# Raised when PostgreSQL or Redis cannot be reached or drops the connection mid-request.
BACKEND_DOWN: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    RedisConnectionError,
    RedisTimeoutError,
)


def response_for(request: Request, exc: BaseException) -> ProblemResponse | None:
    """The problem answer for an expected error, or None for an unexpected one."""
    if isinstance(exc, ApiProblem):
        return problem_response(
            request,
            status=exc.status,
            detail=exc.detail,
            kind=exc.kind,
            title=exc.title,
            errors=exc.errors,
            headers=exc.headers,
        )
    if isinstance(exc, RequestValidationError):
        errors = validation_errors(exc)
        detail = "; ".join(f"{field}: {message}" for field, message in errors[:5])
        return problem_response(request, status=422, detail=detail, errors=errors)
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return problem_response(request, status=exc.status_code, detail=detail, headers=exc.headers)
    if isinstance(exc, BotfleetError):
        return _platform_problem(request, exc)
    if isinstance(exc, asyncpg.DataError):
        # Last line of defence for input the models let through but PostgreSQL cannot store.
        log.warning("input refused by PostgreSQL", extra={"error": type(exc).__name__})
        return problem_response(
            request,
            status=422,
            detail="a value cannot be stored: it is out of range or contains characters "
            "PostgreSQL does not accept (such as NUL)",
        )
    if isinstance(exc, BACKEND_DOWN):
        # PostgreSQL or Redis went away mid-request (a restart, a network cut): the client should
        # come back shortly, not read about an internal error.
        log.warning("backing service unavailable", extra={"error": type(exc).__name__})
        return problem_response(
            request,
            status=503,
            kind="unavailable",
            title="Service unavailable",
            detail="a backing service is unavailable; retry shortly",
            headers={"Retry-After": "5"},
        )
    return None


def _platform_problem(request: Request, exc: BotfleetError) -> ProblemResponse | None:
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            status, kind, title = ERROR_STATUS[cls]
            break
    else:
        declared = getattr(exc, "status", None)
        if not isinstance(declared, int) or not 400 <= declared <= 599:
            return None
        status = declared
        kind, title = _HTTP_KINDS.get(status, ("error", "Error"))
    if isinstance(exc, ServiceUnavailable):
        # The message names hosts; operators find it in the log under the request id.
        log.warning("backing service unavailable", extra={"error": str(exc)})
        return problem_response(
            request,
            status=503,
            kind=kind,
            title=title,
            detail="a backing service is unavailable; retry shortly",
            headers={"Retry-After": "5"},
        )
    field = getattr(exc, "field", None)
    message = getattr(exc, "message", None)
    errors = [(field, message)] if isinstance(field, str) and isinstance(message, str) else None
    return problem_response(
        request, status=status, kind=kind, title=title, detail=str(exc), errors=errors
    )


def internal_error(request: Request) -> ProblemResponse:
    return problem_response(
        request,
        status=500,
        detail="an internal error occurred; it has been logged under this request id",
    )


async def _handle(request: Request, exc: Exception) -> Response:
    response = response_for(request, exc)
    if response is None:
        log.error("unhandled error", exc_info=exc)
        return internal_error(request)
    return response


def install(app: FastAPI) -> None:
    """Answer every expected error as a problem."""
    for exc_class in (
        ApiProblem,
        RequestValidationError,
        StarletteHTTPException,
        BotfleetError,
        asyncpg.DataError,
        *BACKEND_DOWN,
    ):
        app.add_exception_handler(exc_class, _handle)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem answers."""
    descriptions = {
        401: "Missing or unknown API key",
        403: "The API key lacks the scope this operation needs",
        404: "Not found",
        409: "Conflicts with the current state (e.g. duplicate slug, bot token in use)",
        422: "Invalid input; `errors` names every invalid field",
        429: "Rate limit of the API key exceeded; retry after `Retry-After` seconds",
        503: "A backing service is unavailable",
    }
    return {
        status: {
            "description": descriptions.get(status, _HTTP_KINDS.get(status, ("", "Error"))[1]),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
