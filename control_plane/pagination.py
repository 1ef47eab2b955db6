"""Opaque cursors for keyset pages.

A cursor is URL-safe base64 of a small JSON array: the listing it belongs to, then the sort key of the
last row of the page. Keyset pages never skip or repeat a row when rows are inserted meanwhile (new rows
sort after the last page, or before the first one). A cursor from another listing, or an edited one, is
refused with a message naming the ``cursor`` parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from fleet.errors import ValidationError

_BAD_CURSOR = "is not a cursor of this listing; pass next_cursor from the previous page unchanged"


def encode_cursor(listing: str, *key: Any) -> str:
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, listing: str, *types: Callable[[Any], Any]
) -> tuple[Any, ...] | None:
    """The sort key in ``cursor`` (converted with ``types``), or None for the first page."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", _BAD_CURSOR) from None
    if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != listing:
        raise ValidationError("cursor", _BAD_CURSOR)
    try:
        values = tuple(convert(value) for convert, value in zip(types, data[1:], strict=True))
    except (TypeError, ValueError):
        raise ValidationError("cursor", _BAD_CURSOR) from None
    for value in values:
        if isinstance(value, int) and not 0 <= value < 2**63:
            raise ValidationError("cursor", _BAD_CURSOR)
    return values


def split_page(
    rows: list[Any], *, limit: int, listing: str, key: Callable[[Any], tuple[Any, ...]]
) -> tuple[list[Any], str | None]:
    """Rows of a page fetched with ``limit + 1`` and the cursor of the next page (None at the end)."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(listing, *key(page[-1]))
