"""JSON log lines and the masking of secrets, one format for every botfleet process.

Each record becomes one JSON object (``ts``, ``level``, ``logger``, ``msg``, then the process's fields
and any ``extra``) so one log pipeline reads the platform and the tenant bots alike. Bot tokens
(``123:AB…yz``, as the API shows them), passwords in URLs and phone numbers (``+7***45``) never reach
the output, whether in the message, a field or a traceback. The platform adds its context variables
(``fleet.logs``); a tenant bot adds its slug (``tenant_bot.logs``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

_TOKEN_RE = re.compile(r"\b(\d{3,20}):([A-Za-z0-9_-]{2})[A-Za-z0-9_-]{26,60}([A-Za-z0-9_-]{2})\b")
# Not next to a word character, a slash or a colon: ids, paths, ports and times are not phones.
_PHONE_RE = re.compile(r"(?<![\w/:])\+?\d[\d\s().-]{8,16}\d(?![\w/:])")
_SECRET_URL_RE = re.compile(r"(\w+://[^:/\s]*:)[^@\s]+@")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# uvicorn's copy of the message with terminal colour codes: the message says it already.
_DUPLICATES = {"color_message"}
_NEEDS_QUOTES = re.compile(r'[\s"=]')

Fields = Callable[[], Mapping[str, Any]]


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


def _no_fields() -> Mapping[str, Any]:
    return {}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call gave with ``extra=`` (not the record's own attributes)."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and key not in _DUPLICATES and not key.startswith("_")
    }


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or _NEEDS_QUOTES.search(text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ``fields()`` and ``extra`` fields."""

    def __init__(self, fields: Fields = _no_fields) -> None:
        super().__init__()
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        for key, value in {**self.fields(), **extra_fields(record)}.items():
            entry[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, default=lambda v: mask(str(v)), ensure_ascii=False)


class MaskingTextFormatter(logging.Formatter):
    """Human-readable lines for terminals, masked like the JSON ones: the message, then
    ``fields()`` and the record's ``extra`` fields as ``key=value`` (``request method=GET
    route=/api/v1/plans status=200 ...``, ``event delivered kind=tenant_live tenant=barber``);
    a value with spaces is quoted, a None one left out. A traceback follows the line."""

    def __init__(self, fmt: str, fields: Fields = _no_fields) -> None:
        super().__init__(fmt)
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        pairs = {**self.fields(), **extra_fields(record)}
        context = " ".join(f"{k}={_text_value(v)}" for k, v in pairs.items() if v is not None)
        saved, record.exc_text = record.exc_text, None
        exc_info, stack_info = record.exc_info, record.stack_info
        record.exc_info = record.stack_info = None
        try:
            line = f"{super().format(record)} {context}".rstrip()
        finally:
            record.exc_info, record.stack_info, record.exc_text = exc_info, stack_info, saved
        if exc_info:
            line += "\n" + self.formatException(exc_info)
        if stack_info:
            line += "\n" + self.formatStack(stack_info)
        return mask(line)


def install(formatter: logging.Formatter, level: str, *, quiet: tuple[str, ...] = ()) -> None:
    """Send the process's logs to stderr through ``formatter``; the ``quiet`` loggers (chatty
    libraries) log warnings and above only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
