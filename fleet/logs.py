"""The platform's logs: JSON lines (``kit.logs``) carrying context fields, secrets masked.

Context (``request_id``, ``job_id``, ``tenant``) is carried in context variables, so every record logged
while handling a request or a job carries them without being passed around.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kit.logs import JsonFormatter as _KitJsonFormatter
from kit.logs import MaskingTextFormatter, install, mask

__all__ = ["ContextJsonFormatter", "current_context", "log_context", "mask", "setup_logging"]

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every record logged inside the block (and tasks it starts)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class ContextJsonFormatter(_KitJsonFormatter):
    """JSON lines with the current :func:`log_context` fields."""

    def __init__(self) -> None:
        super().__init__(fields=_context.get)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure the root logger once per process."""
    formatter: logging.Formatter = (
        ContextJsonFormatter()
        if fmt == "json"
        else MaskingTextFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", fields=_context.get
        )
    )
    install(formatter, level, quiet=("aiogram.event", "httpx", "asyncio"))
