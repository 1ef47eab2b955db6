"""Helpers shared by the billing tests (imported by name: test folders are not packages)."""

from __future__ import annotations

from datetime import datetime, timedelta

YOOKASSA_IP = "127.0.0.77"  # the stand-in notifies from this loopback alias


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
