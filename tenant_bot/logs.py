"""The tenant bot's logs: JSON lines (``kit.logs``, the platform's format) with the tenant's slug on
every record; bot tokens, phone numbers and URL passwords masked."""

from __future__ import annotations

from kit.logs import JsonFormatter, install


def setup_logging(tenant: str, level: str = "INFO") -> None:
    """Send the process's logs to stderr as JSON lines (call once, from the entry point)."""
    fields = {"tenant": tenant}
    install(
        JsonFormatter(fields=lambda: fields),
        level,
        quiet=("aiogram.event", "aiogram.dispatcher", "asyncio"),
    )
