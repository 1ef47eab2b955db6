"""``/docs`` and ``/redoc`` work with no internet: every asset their pages name is served by the API
itself (issue 16 item 2; FastAPI's own pages load Swagger UI and ReDoc from a CDN)."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from tests.support.api_support import client_for

# Every URL an HTML page or its inline script names: attributes and Swagger UI's `url: '...'`.
_URLS = re.compile(r"""(?:href|src|spec-url)="([^"]+)"|\burl:\s*'([^']+)'""")
_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.mark.parametrize(("page", "expected"), [("/docs", 4), ("/redoc", 3)])
async def test_docs_pages_name_only_assets_the_api_serves(
    app: FastAPI, page: str, expected: int
) -> None:
    async with client_for(app) as client:
        html = await client.get(page)
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert "://" not in html.text, "a page that names another host is blank offline"
        urls = [a or b for a, b in _URLS.findall(html.text)]
        assert len(urls) == expected, urls
        for url in urls:
            assert url.startswith("/"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            suffix = "." + url.rsplit(".", 1)[-1]
            assert _TYPES[suffix] in asset.headers["content-type"], (url, asset.headers)
            assert len(asset.content) > 1000 or (suffix == ".json" and asset.json()["paths"]), url


async def test_swagger_ui_bundle_is_the_real_one(app: FastAPI) -> None:
    async with client_for(app) as client:
        js = await client.get("/docs/static/swagger-ui-bundle.js")
        redoc = await client.get("/docs/static/redoc.standalone.js")
        redirect = await client.get("/docs/oauth2-redirect")
    assert b"SwaggerUIBundle" in js.content
    assert b"Redoc" in redoc.content
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text.lower()
