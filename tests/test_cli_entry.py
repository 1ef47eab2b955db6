"""``botfleet tenant-bot`` (every tenant container's command) starts the bot without importing the
rest of the CLI; every other command, and the tenant bot's own ``--help``, go through the typer app."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
sys.argv = ["botfleet", *sys.argv[1:]]
from cli import entry
try:
    entry.main()
except SystemExit as exc:
    print("EXIT", exc.code, "cli.main" in sys.modules, "cli.up" in sys.modules)
"""


def _run(*args: str) -> str:
    env = {"PATH": "/usr/bin:/bin"}  # no BOTFLEET_TENANT_*: the contract is refused (exit 2)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120
    )
    return done.stdout + done.stderr


def test_tenant_bot_skips_the_typer_app() -> None:
    for args in ((), ("--check-health",)):
        out = _run("tenant-bot", *args)
        assert "EXIT 2 False False" in out, out
        assert "BOTFLEET_TENANT_SLUG is required" in out


def test_everything_else_goes_through_the_typer_app() -> None:
    out = _run("tenant-bot", "--help")
    assert "EXIT 0 True True" in out, out
    assert "--check-health" in out
