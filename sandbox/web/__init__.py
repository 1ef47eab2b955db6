"""The sandbox web page: chat with any emulated bot as a Telegram user, in a browser.

Three static files (``index.html``, ``app.js``, ``app.css``) with no build step and no external
resources. The page talks only to the emulator's control API (``/sandbox/...``) on the same origin, so
the Telegram emulator serves it: ``/`` is the page, ``/web/<file>`` its assets.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent

# The only files served, with their content types; anything else is a 404 (no directory walking).
_ASSETS = {
    "app.js": "text/javascript",
    "app.css": "text/css",
}

# Defence in depth: even if a bot's text slipped past the renderer, no inline script could run.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class WebPage:
    """aiohttp routes serving the page and its assets from :data:`STATIC_DIR`."""

    def __init__(self, *, static_dir: Path = STATIC_DIR) -> None:
        self.static_dir = static_dir

    def routes(self) -> list[web.RouteDef]:
        """``GET /`` (the page) and ``GET /web/{name}`` (its script and stylesheet)."""
        return [
            web.get("/", self.index),
            web.get("/web/{name}", self.asset),
        ]

    def _file(self, name: str, content_type: str, **headers: str) -> web.Response:
        # Read on each request: the files are a few kB, and edits show up without a restart.
        body = (self.static_dir / name).read_bytes()
        return web.Response(
            body=body,
            content_type=content_type,
            charset="utf-8",
            headers={**_HEADERS, **headers},
        )

    async def index(self, request: web.Request) -> web.Response:
        """The page itself."""
        return self._file("index.html", "text/html", **{"Content-Security-Policy": _CSP})

    async def asset(self, request: web.Request) -> web.Response:
        """``app.js`` or ``app.css``."""
        name = request.match_info["name"]
        content_type = _ASSETS.get(name)
        if content_type is None:
            raise web.HTTPNotFound(text="no such asset")
        return self._file(name, content_type)
