"""Counts read as words: "1 booking", "2 bookings", never "booking(s)"."""

from __future__ import annotations

import pytest

from templates import Texts


@pytest.mark.parametrize(
    ("key", "count", "expected"),
    [
        ("adm_schedule", 1, "1 booking"),
        ("adm_schedule", 3, "3 bookings"),
        ("adm_awaiting_list", 1, "1 booking ended"),
        ("adm_awaiting_list", 2, "2 bookings ended"),
    ],
)
def test_english_counts_agree_with_their_number(key: str, count: int, expected: str) -> None:
    texts = Texts("tenant_bot")
    day = {"day": "Sat 5 Dec"} if key == "adm_schedule" else {}
    text = texts("en", key, count=count, **day)
    assert expected in text and "(s)" not in text
    if count == 1:
        assert "bookings" not in text
