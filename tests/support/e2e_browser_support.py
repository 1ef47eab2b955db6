"""A person in headless Chromium on the sandbox web page: the browser half of the e2e tests.

Selenium is synchronous: tests run these helpers in a thread (``asyncio.to_thread``). Every wait
polls with a deadline and fails naming what it waited for. Debian's ``chromium`` and
``chromium-driver`` (or ``CHROMIUM_BIN`` / ``CHROMEDRIVER_BIN``) and the ``selenium`` package are
needed; :func:`browser_skip_reason` says what is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.e2e_support import HUMAN_PACE_S

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
)
# Newest bot message and its texts, read in one script call (a message re-rendered between two
# driver calls would go stale). A file the bot sends after its answer (a booking's calendar file)
# is not the conversation's newest message: the answer with its buttons is.
_FROM_BOT = "#messages li.from-bot:not(:has(a.document))"
_LAST_BOT = f"const all = document.querySelectorAll('{_FROM_BOT}'); return all[all.length - 1];"
_BOT_TEXTS = f"return [...document.querySelectorAll('{_FROM_BOT} .bubble')].map(e => e.innerText)"
_BOT_FILES = (
    "return [...document.querySelectorAll('#messages li.from-bot a.document .doc-name')]"
    ".map(e => e.innerText)"
)


def browser_skip_reason() -> str | None:
    """Why no browser test can run here, or None."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[dev]')"
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            return f"{binary} is missing: apt-get install chromium chromium-driver"
    return None


def start_chromium(profile: Path) -> WebDriver:
    """Headless Debian Chromium through chromedriver, with a throwaway profile."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


class Person:
    """One browser tab on the sandbox web page, acting as the page's current user."""

    def __init__(self, driver: WebDriver, web_url: str, *, timeout: float = 30.0) -> None:
        self.driver = driver
        self.web_url = web_url
        self.timeout = timeout
        self._last_action = 0.0

    # -- waiting ---------------------------------------------------------------------------------

    def wait(self, condition: Callable[[WebDriver], Any], what: str) -> Any:
        """Poll ``condition`` until truthy; fail naming ``what``."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(
            self.driver,
            self.timeout,
            poll_frequency=0.1,
            ignored_exceptions=[StaleElementReferenceException],
        ).until(condition, message=f"timed out waiting for {what}")

    def bot_texts(self) -> list[str]:
        """Texts of the bot's messages as the page shows them, oldest first."""
        return list(self.driver.execute_script(_BOT_TEXTS))

    def bot_files(self) -> list[str]:
        """Names of the files the bot sent in this chat."""
        return list(self.driver.execute_script(_BOT_FILES))

    def last_bot_text(self) -> str:
        texts = self.bot_texts()
        return texts[-1] if texts else ""

    def wait_last(
        self,
        fragment: str,
        *,
        before: list[str] | None = None,
        buttons_before: list[str] | None = None,
    ) -> str:
        """The newest bot message once it contains ``fragment`` (and the chat changed since
        ``before``: its texts, or the newest message's buttons when ``buttons_before`` is given,
        since an edited keyboard leaves the texts as they were)."""

        def changed(texts: list[str]) -> bool:
            if before is None or texts != before:
                return True
            return buttons_before is not None and self.last_buttons() != buttons_before

        def ready(_: WebDriver) -> str | None:
            texts = self.bot_texts()
            if texts and fragment in texts[-1] and changed(texts):
                return texts[-1]
            return None

        return str(self.wait(ready, f"a bot message with {fragment!r}"))

    def wait_any(self, fragment: str) -> str:
        """Any bot message containing ``fragment``."""
        return str(
            self.wait(
                lambda _: next((t for t in self.bot_texts() if fragment in t), None),
                f"a bot message with {fragment!r} anywhere in the chat",
            )
        )

    def _pace(self) -> None:
        wait = self._last_action + HUMAN_PACE_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_action = time.monotonic()

    # -- acting ----------------------------------------------------------------------------------

    def open(self) -> None:
        self.driver.get(self.web_url)
        self.wait(lambda d: d.find_elements("id", "user-form"), "the page")

    def new_user(self, first_name: str, user_id: int, phone: str) -> None:
        """Create a user with the page's form; the page switches to them."""
        find = self.driver.find_element
        if find("id", "new-user").get_attribute("open") is None:
            find("css selector", "#new-user summary").click()
        for field, value in (("user-first-name", first_name), ("user-id", str(user_id))):
            find("id", field).clear()
            find("id", field).send_keys(value)
        find("id", "user-phone").clear()
        find("id", "user-phone").send_keys(phone)
        find("css selector", "#user-form button[type=submit]").click()
        self.wait(
            lambda _: find("id", "user-select").get_attribute("value") == str(user_id),
            f"user {first_name}",
        )

    def switch_user(self, user_id: int) -> None:
        """Pick another existing user in "Chatting as"."""
        from selenium.webdriver.support.ui import Select

        Select(self.driver.find_element("id", "user-select")).select_by_value(str(user_id))
        self.wait(
            lambda d: d.find_element("id", "user-select").get_attribute("value") == str(user_id),
            f"user {user_id}",
        )

    def open_chat(self, bot_id: int) -> None:
        """Tap a bot in the list (it appears there as soon as it registers)."""
        selector = f'button.bot[data-bot-id="{bot_id}"]'

        def click(driver: WebDriver) -> bool:
            # The list is rebuilt when a bot registers or renames itself: find and click at once
            # (a stale button is retried by the wait).
            found = driver.find_elements("css selector", selector)
            if found:
                found[0].click()
            return bool(found)

        self.wait(click, f"bot {bot_id} in the list")
        self.wait(
            lambda d: (
                d.find_element("id", "composer").is_displayed()
                or d.find_element("id", "start").is_displayed()
            ),
            "the composer (or Start, for a bot never written to)",
        )

    def say(self, text: str, expect: str) -> str:
        """Type ``text`` and press Enter; the bot's answer containing ``expect``."""
        from selenium.webdriver.common.keys import Keys

        self._pace()
        before = self.bot_texts()
        start = self.driver.find_element("id", "start")
        if text == "/start" and start.is_displayed():
            start.click()  # a chat never written to shows Start instead of the input
        else:
            self.driver.find_element("id", "input").send_keys(text, Keys.ENTER)
        return self.wait_last(expect, before=before)

    def _last_buttons(self) -> list[WebElement]:
        last = self.driver.execute_script(_LAST_BOT)
        return [] if last is None else last.find_elements("css selector", ".kb-button")

    def tap(
        self, expect: str, *, text: str | None = None, pick: Callable[[str], bool] | None = None
    ) -> str:
        """Tap a button of the newest bot message (by label, or the first ``pick`` accepts); the
        bot's answer containing ``expect``."""
        self._pace()
        before = self.bot_texts()
        buttons_before = self.last_buttons()

        def find(_: WebDriver) -> WebElement | None:
            for button in self._last_buttons():
                label = button.text
                if (text is not None and label == text) or (pick is not None and pick(label)):
                    return button
            return None

        self.wait(find, f"a button {text or 'matching'!r}").click()
        return self.wait_last(expect, before=before, buttons_before=buttons_before)

    def last_buttons(self) -> list[str]:
        """Labels of the newest bot message's buttons."""
        return [b.text for b in self._last_buttons()]

    def share_contact(self, expect: str) -> str:
        """Tap the reply keyboard's contact button and share the user's own phone."""
        self._pace()
        before = self.bot_texts()
        self.wait(
            lambda d: d.find_elements("css selector", "#reply-keyboard .kb-button.contact"),
            "the share-contact button",
        )[0].click()
        share = self.driver.find_element("id", "contact-share")
        self.wait(lambda _: share.is_displayed(), "the contact dialog")
        share.click()
        return self.wait_last(expect, before=before)

    def pay_in_new_tab(self, link_fragment: str) -> None:
        """Open the newest pay link (a new tab), press Pay on the checkout page, close the tab."""
        self._pace()
        driver = self.driver
        chat_tab = driver.current_window_handle
        link = self.wait(
            lambda d: d.find_elements("partial link text", link_fragment), "the pay link"
        )[-1]
        link.click()
        self.wait(lambda d: len(d.window_handles) == 2, "the checkout tab")
        driver.switch_to.window(next(h for h in driver.window_handles if h != chat_tab))
        self.wait(lambda d: d.find_elements("css selector", "button.pay"), "the checkout page")
        driver.find_element("css selector", "button.pay").click()
        self.wait(lambda d: d.current_url.startswith(self.web_url), "the return to the web page")
        driver.close()
        driver.switch_to.window(chat_tab)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.driver.save_screenshot(str(path))
        return path

    def severe_console_errors(self) -> list[dict[str, Any]]:
        """Console errors of the pages (the checkout page's missing favicon aside)."""
        return [
            e
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]
        ]


def is_free_day(label: str) -> bool:
    return label.isdigit()


def is_time(label: str) -> bool:
    return re.fullmatch(r"\d\d:\d\d", label) is not None
