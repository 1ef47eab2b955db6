"""``python -m tenant_bot``: the same as ``botfleet tenant-bot``."""

from __future__ import annotations

import sys

from tenant_bot.app import run_from_env

if __name__ == "__main__":
    sys.exit(run_from_env())
