"""Running an aiohttp application on a given (or free) port inside the current event loop."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from aiohttp import web


@dataclass
class RunningApp:
    """An aiohttp app being served; ``base_url`` has the real port even when 0 was asked."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """``http://host:port`` with IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Close the listening socket and finish in-flight requests (briefly)."""
        await self.runner.cleanup()


async def serve_app(app: web.Application, *, host: str, port: int) -> RunningApp:
    """Bind ``host:port`` (``port=0`` picks a free one) and start serving ``app``.

    The socket is bound here rather than by ``TCPSite`` so the chosen port is known without
    reaching into aiohttp internals. Handler cancellation is on so a client that hangs up a long
    poll frees its handler at once, and shutdown waits at most a second for stragglers.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    return RunningApp(runner=runner, host=host, port=sock.getsockname()[1])
