"""The log formatters (issue 16 item 8): a terminal's text lines keep the fields a call gives
(``method route status``, an event's ``kind`` and ``tenant``) that they used to drop, and both
formats mask secrets in those fields too."""

from __future__ import annotations

import json
import logging
import sys

from fleet.logs import ContextJsonFormatter, log_context
from kit.logs import MaskingTextFormatter

TOKEN = "7012345678:AAEhBOweik9ad9r3Q8_8mRb-yR6BLkBtmUs"
MASKED = "7012345678:AA…Us"


def _record(msg: str, *, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("kaput")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("botfleet.test", logging.INFO, __file__, 1, msg, (), exc_info)
    record.__dict__.update(extra)
    return record


def _text(record: logging.LogRecord) -> str:
    formatter = MaskingTextFormatter(
        "%(levelname)s %(name)s: %(message)s", fields=lambda: {"request_id": "req-1"}
    )
    return formatter.format(record)


def test_text_lines_keep_an_access_logs_method_route_and_status() -> None:
    line = _text(
        _record(
            "request",
            method="GET",
            route="/api/v1/tenants/{slug}",
            status=404,
            duration_ms=1.25,
            api_key_id=None,
        )
    )
    assert line == (
        "INFO botfleet.test: request request_id=req-1 method=GET route=/api/v1/tenants/{slug} "
        "status=404 duration_ms=1.25"
    )


def test_text_lines_keep_an_events_kind_and_tenant_and_quote_spaces() -> None:
    line = _text(
        _record("event delivered", event_id=7, kind="tenant_live", tenant="barber", reason="a b")
    )
    assert line.endswith('event_id=7 kind=tenant_live tenant=barber reason="a b"')


def test_text_lines_mask_secrets_in_fields_and_put_the_traceback_after_the_fields() -> None:
    line = _text(_record("token changed", exc=True, token=TOKEN, color_message="\x1b[36mx"))
    first, *rest = line.splitlines()
    assert first == f"INFO botfleet.test: token changed request_id=req-1 token={MASKED}"
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: kaput"
    assert TOKEN not in line


def test_json_lines_mask_secrets_in_fields_too() -> None:
    with log_context(tenant="barber"):
        line = ContextJsonFormatter().format(
            _record("token changed", token=TOKEN, url="postgresql://u:pw@db/x", user_id=1234567890)
        )
    entry = json.loads(line)
    assert entry["tenant"] == "barber"
    assert entry["token"] == MASKED
    assert entry["url"] == "postgresql://u:***@db/x"
    assert entry["user_id"] == 1234567890
    assert "color_message" not in entry
