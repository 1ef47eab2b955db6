"""The sandbox web page in headless Chromium: the ``browser`` fixture and small helpers.

Selenium is synchronous and the emulator runs in the test's event loop, so tests drive the browser
in a thread (``asyncio.to_thread``). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.e2e_browser_support import (
    ARTIFACTS,
    browser_skip_reason,
    start_chromium,
)

if TYPE_CHECKING:
    from pathlib import Path

    from selenium.webdriver.remote.webdriver import WebDriver

__all__ = ["ARTIFACTS", "bot_messages", "browser", "screenshot", "waiter"]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Debian Chromium through chromedriver; skipped when either or selenium is missing."""
    reason = browser_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from pathlib import Path

    profile = Path(tempfile.mkdtemp(prefix="botfleet-chromium-"))
    driver = start_chromium(profile)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def waiter(driver: WebDriver, timeout: float = 10.0) -> Callable[[Callable[[Any], Any], str], Any]:
    """``wait(condition, what)``: poll until the condition holds, fail naming ``what``."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition: Callable[[Any], Any], what: str) -> Any:
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.05,
            ignored_exceptions=[StaleElementReferenceException],
        ).until(condition, message=f"timed out waiting for {what}")

    return wait


def bot_messages(driver: WebDriver) -> list[str]:
    """Texts of the bot's messages as the page shows them."""
    # One script call reads them all: a message re-rendered between two driver calls goes stale.
    script = "return [...document.querySelectorAll('.from-bot .bubble')].map((e) => e.innerText)"
    return list(driver.execute_script(script))


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save what the browser shows as ``test-artifacts/<name>``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path
