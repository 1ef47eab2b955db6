"""JSON logs with context fields, and masking of bot tokens and phone numbers.

Context (``request_id``, ``job_id``, ``tenant``) is carried in context variables, so every record logged
while handling a request or a job carries them without being passed around.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

_TOKEN_RE = re.compile(r"\b(\d{3,20}):([A-Za-z0-9_-]{2})[A-Za-z0-9_-]{26,60}([A-Za-z0-9_-]{2})\b")
_PHONE_RE = re.compile(r"(?<![\w/:])\+?\d[\d\s().-]{8,16}\d(?![\w/:])")
_SECRET_URL_RE = re.compile(r"(\w+://[^:/\s]*:)[^@\s]+@")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def mask(text: str) -> str:
    """Mask bot tokens (``123:AB…yz``), phone numbers (``+7***45``) and passwords in URLs."""
    text = _TOKEN_RE.sub(lambda m: f"{m[1]}:{m[2]}…{m[3]}", text)
    text = _SECRET_URL_RE.sub(r"\1***@", text)
    return _PHONE_RE.sub(lambda m: _mask_phone(m[0]), text)


def _mask_phone(raw: str) -> str:
    digits = re.sub(r"\D", "", raw)
    if len(digits) < 10:
        return raw
    return ("+" if raw.startswith("+") else "") + digits[:1] + "***" + digits[-2:]


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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context and ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        entry.update(_context.get())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, default=lambda v: mask(str(v)), ensure_ascii=False)


class MaskingTextFormatter(logging.Formatter):
    """Human-readable lines for terminals, masked like the JSON ones."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={v}" for k, v in _context.get().items())
        line = super().format(record)
        return mask(f"{line} {context}".rstrip())


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure the root logger once per process."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            MaskingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiogram.event", "httpx", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
