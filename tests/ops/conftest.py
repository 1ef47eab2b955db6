"""Fixtures of the operations tests: a throw-away database for processes that act on every row of
theirs (a worker claims every job, the lifecycle moves every subscription)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.support.databases import ControlTemplate, drop_later


@pytest.fixture
async def own_database(database_url: str, control_template: ControlTemplate) -> AsyncIterator[str]:
    """A database of this test's own (a worker claims every job of its database): a copy of the
    session's migrated template, dropped in the background afterwards (tests/support/databases.py)."""
    name = "bfo_" + secrets.token_hex(5)
    yield await control_template.copy(name)
    drop_later(database_url, name)
