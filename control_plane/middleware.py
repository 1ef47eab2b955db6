"""The outermost layer of every request (pure ASGI, so it costs little): the request id, JSON access
log, Prometheus metrics, and a problem answer for any error nothing else handled.

The request id comes from ``X-Request-Id`` when the caller sends a sane one (1-128 characters of
letters, digits and ``.-_:``), else a new one is made; it is returned in ``X-Request-Id``, carried by
every log record of the request (``fleet.logs.log_context``) and stored in the jobs the request queues.
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.metrics import Metrics
from control_plane.problems import internal_error
from fleet.logs import log_context

log = logging.getLogger("control_plane.access")

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None


class RequestContextMiddleware:
    """Request id, access log, metrics and last-resort error answers."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 128 random bits as 32 hex digits, like uuid4().hex without building a UUID (1.7 -> 0.4 µs)
        request_id = incoming_request_id(scope) or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled error", extra={"path": scope.get("path")})
                if response_started:
                    raise
                await internal_error(Request(scope))(scope, receive, send_with_id)
            finally:
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or UNMATCHED_ROUTE
        method = scope.get("method", "")
        self.metrics.observe(method=method, route=template, status=status, seconds=seconds)
        if log.isEnabledFor(logging.INFO):
            state = scope.get("state", {})
            api_key = state.get("api_key")
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "api_key_id": getattr(api_key, "id", None),
                },
            )
