"""``botfleet keygen``."""

from __future__ import annotations

import typer

from fleet.secrets import generate_master_key


def keygen() -> None:
    """Print a new random master key (keep it secret; losing it loses every stored bot token)."""
    typer.echo(generate_master_key())
