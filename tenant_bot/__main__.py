"""``python -m tenant_bot``: the same as ``botfleet tenant-bot``.

``python -m tenant_bot --check-health`` is the container health check instead: it exits 0 while the
bot's heartbeat is present and healthy, 1 otherwise (see :mod:`tenant_bot.health`).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check-health"]:
        from tenant_bot.health import check_from_env

        return check_from_env()
    if argv[1:]:
        print("usage: python -m tenant_bot [--check-health]", file=sys.stderr)
        return 2
    from tenant_bot.app import run_from_env

    return run_from_env()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
