"""``python -m tenant_bot``: the same as ``botfleet tenant-bot``.

``python -m tenant_bot --check-health`` is the container health check instead: it exits 0 while the
bot's heartbeat is present and healthy, 1 otherwise (see :mod:`tenant_bot.health`).
``python -m tenant_bot --warm-up`` imports every module a bot needs and builds what it builds at
start-up (:func:`tenant_bot.app.warm_up`: no connection, nothing sent), then exits 0: the docker runtime
runs it once in a throwaway container of a new image, so the image's files are read from disk and its
first-start work is done before the first tenant's container starts (see
:mod:`deploy_worker.runtimes.docker`).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check-health"]:
        from tenant_bot.health import check_from_env

        return check_from_env()
    if argv[1:] == ["--warm-up"]:
        from tenant_bot.app import warm_up

        warm_up()
        return 0
    if argv[1:]:
        print("usage: python -m tenant_bot [--check-health | --warm-up]", file=sys.stderr)
        return 2
    from tenant_bot.app import run_from_env

    return run_from_env()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
