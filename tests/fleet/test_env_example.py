"""``.env.example`` cannot drift from ``fleet/settings.py`` (issue 16 item 8): every setting is
documented there, every commented-out line (``# BOTFLEET_X=value``: "the default") parses to the
default the code has, and every blank line (``BOTFLEET_X=``: "fill in") has no default."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from deploy_worker.runtimes import process_confinement
from fleet.settings import ENV_PREFIX, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
_LINE = re.compile(r"^(?P<commented>#\s)?(?P<name>BOTFLEET_[A-Z0-9_]+)=(?P<value>.*)$")

# Read by docker-compose.yml only, not by the platform's processes.
COMPOSE_ONLY = {"BOTFLEET_IMAGE", "BOTFLEET_API_PUBLISH"}
# Lines that show what a value looks like (compose sets them), not a default: the code has none.
SHAPES = {"database_url", "redis_url", "provisioner_database_url"}


def _documented() -> dict[str, tuple[bool, str]]:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    matches = [m for m in map(_LINE.match, lines) if m]
    return {m["name"]: (bool(m["commented"]), m["value"]) for m in matches}


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings as a process reads them from exactly ``env`` (no .env file, no other BOTFLEET_*)."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def _effective(settings: Settings, field: str) -> Any:
    if field == "process_confinement":  # unset: required, except in a sandbox
        return process_confinement(settings, namespace="t").mode
    return getattr(settings, field)


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    documented = set(_documented()) - COMPOSE_ONLY
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from .env.example"
    assert documented - fields == set(), ".env.example names settings the code does not have"


@pytest.mark.parametrize(
    "name", sorted(set(_documented()) - COMPOSE_ONLY), ids=lambda name: name[9:].lower()
)
def test_env_example_shows_the_codes_default(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    commented, value = _documented()[name]
    field = name.removeprefix(ENV_PREFIX).lower()
    default = _settings(monkeypatch)
    if not commented or field in SHAPES:
        assert getattr(default, field) in (None, []), f"{name} has a default: show it commented"
        return
    shown = _settings(monkeypatch, **{name: value})
    assert _effective(shown, field) == _effective(default, field), (
        f".env.example says {name}={value}, the code's default is {getattr(default, field)!r}"
    )
