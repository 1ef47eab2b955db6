"""The ``botfleet`` console script: the whole typer app, except for a tenant bot's own start.

``botfleet tenant-bot`` is every tenant container's command and its health check's sibling; going
through the typer app would import every command group (the control plane's, the worker's, ``up``'s)
into each bot: ≈ 12 MB of RSS per container that the bot never uses. Its two forms are dispatched
straight to :mod:`tenant_bot.__main__`; anything else (``--help``, a typo) goes to the typer app,
which answers exactly as before.
"""

from __future__ import annotations

import sys

_TENANT_BOT_FAST: tuple[list[str], ...] = ([], ["--check-health"])


def main() -> None:
    if sys.argv[1:2] == ["tenant-bot"] and sys.argv[2:] in _TENANT_BOT_FAST:
        from tenant_bot.__main__ import main as tenant_bot_main

        sys.exit(tenant_bot_main(["tenant_bot", *sys.argv[2:]]))
    from cli.main import main as full

    full()
