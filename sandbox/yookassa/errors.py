"""YooKassa API errors: ``{"type": "error", "id", "code", "description", "parameter"}``."""

from __future__ import annotations

import uuid
from typing import Any

_STATUS_CODES = {
    400: "invalid_request",
    401: "invalid_credentials",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    415: "invalid_request",
    429: "too_many_requests",
    500: "internal_server_error",
}


class YooKassaError(Exception):
    """An error answer of the YooKassa API with the HTTP status YooKassa uses for its code."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        parameter: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "invalid_request")
        self.description = description
        self.parameter = parameter

    def to_payload(self) -> dict[str, Any]:
        """The JSON body YooKassa sends (every error carries a fresh ``id``)."""
        payload: dict[str, Any] = {
            "type": "error",
            "id": str(uuid.uuid4()),
            "code": self.code,
            "description": self.description,
        }
        if self.parameter is not None:
            payload["parameter"] = self.parameter
        return payload


def invalid_request(description: str, parameter: str | None = None) -> YooKassaError:
    """``400 invalid_request``."""
    return YooKassaError(400, description, parameter=parameter)


def not_found(description: str = "Payment doesn't exist or access denied") -> YooKassaError:
    """``404 not_found``."""
    return YooKassaError(404, description)


class ControlError(Exception):
    """A bad request to the stand-in's control API."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
