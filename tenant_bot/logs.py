"""JSON logs for the tenant bot: one object per line, the tenant slug on every record, secrets masked.

The tenant bot may not import the platform (``fleet``), so it carries its own small formatter; the
format matches the platform's (``ts``, ``level``, ``logger``, ``msg`` plus context fields), so one log
pipeline reads both. Bot tokens, phone numbers and URL passwords never reach the output.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_TOKEN_RE = re.compile(r"\b(\d{3,20}):[A-Za-z0-9_-]{30,64}\b")
_PHONE_RE = re.compile(r"(?<![\w/])\+?\d[\d\s().-]{8,16}\d(?![\w/])")
_SECRET_URL_RE = re.compile(r"(\w+://[^:/\s]*:)[^@\s]+@")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def mask(text: str) -> str:
    """Mask bot tokens (``123:***``), passwords in URLs and phone numbers (``+7***45``)."""
    text = _TOKEN_RE.sub(lambda m: f"{m[1]}:***", text)
    text = _SECRET_URL_RE.sub(r"\1***@", text)
    return _PHONE_RE.sub(_mask_phone, text)


def _mask_phone(match: re.Match[str]) -> str:
    raw = match[0]
    digits = re.sub(r"\D", "", raw)
    if len(digits) < 10:
        return raw
    return ("+" if raw.startswith("+") else "") + digits[:1] + "***" + digits[-2:]


class JsonFormatter(logging.Formatter):
    """Formats records as JSON lines carrying ``tenant`` and any ``extra`` fields."""

    def __init__(self, tenant: str) -> None:
        super().__init__()
        self.tenant = tenant

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
            "tenant": self.tenant,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, default=lambda v: mask(str(v)), ensure_ascii=False)


def setup_logging(tenant: str, level: str = "INFO") -> None:
    """Send the process's logs to stderr as JSON lines (call once, from the entry point)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(tenant))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiogram.event", "aiogram.dispatcher", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
