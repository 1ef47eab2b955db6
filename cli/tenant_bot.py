"""``botfleet tenant-bot``: run one tenant's booking bot, configured only by ``BOTFLEET_TENANT_*``."""

from __future__ import annotations

import typer


def tenant_bot(
    check_health: bool = typer.Option(
        False,
        "--check-health",
        help="Do not run the bot: exit 0 if its heartbeat is present and healthy, 1 if not "
        "(the reason on stderr). A container health check.",
    ),
) -> None:
    """Run the tenant bot described by the BOTFLEET_TENANT_* environment until SIGTERM/SIGINT.

    Exits 2 with a one-line message naming each missing or invalid variable, 1 when the database,
    Redis or Telegram cannot be reached at start-up, 0 after a clean stop.
    """
    if check_health:
        from tenant_bot.health import check_from_env

        code = check_from_env()
    else:
        from tenant_bot.app import run_from_env  # aiogram is heavy: keep `botfleet --help` fast

        code = run_from_env()
    if code:
        raise typer.Exit(code)
