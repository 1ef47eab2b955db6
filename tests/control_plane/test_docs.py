"""``/docs`` and ``/redoc`` work with no internet: every asset their pages name is served by the API
itself (issue 16 item 2; FastAPI's own pages load Swagger UI and ReDoc from a CDN)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import uvicorn
from fastapi import FastAPI

from tests.support.api_support import client_for
from tests.support.e2e_browser_support import (
    ARTIFACTS,
    CHROME_ARGS,
    CHROMEDRIVER,
    CHROMIUM,
    browser_skip_reason,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

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


# ----- in headless Chromium with no internet ----------------------------------------------------


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium that resolves no host name: only 127.0.0.1 is reachable (offline)."""
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver

    profile = tempfile.mkdtemp(prefix="botfleet-docs-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        *CHROME_ARGS,
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` (its lifespan already run by the fixture) on a real port; its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _rendered(driver: WebDriver, url: str, selector: str, shot: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    try:
        element = WebDriverWait(driver, 30, poll_frequency=0.1).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector)),
            message=f"{url} showed no {selector}",
        )
        return str(element.text)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / shot))


async def test_docs_and_redoc_render_with_no_internet(served: str, browser: WebDriver) -> None:
    swagger = await asyncio.to_thread(
        _rendered,
        browser,
        f"{served}/docs",
        ".swagger-ui .opblock-summary-path",
        "docs-swagger.png",
    )
    assert swagger.startswith("/api/v1/")
    title = await asyncio.to_thread(_rendered, browser, f"{served}/redoc", "h1", "docs-redoc.png")
    assert "botfleet control plane" in title
