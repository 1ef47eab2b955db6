"""What the end-to-end tests (and ``benchmarks/journey.py``) share: ``botfleet up`` as a subprocess,
a scratch database for it, and the people of the journey acting through public surfaces only.

Kept out of conftest so tests and the benchmark can import it. Nothing here reaches into the
platform's internals: the running ``up`` is driven through the sandbox's user actions over HTTP, the
YooKassa checkout page, the REST API and the CLI, exactly as a person or an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis

from sandbox.telegram import TelegramSandbox, TelegramUser
from tests.support.databases import create_database, drop_later

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path(sys.executable)
SALES_BOT_USERNAME = "botfleet_sales_bot"
PLAN_LABEL = "Month · 990 ₽"  # the demo plan `up` adds to an empty sandbox
OWNER_ZONE = "Europe/Moscow"
OWNER_ZONE_LABEL = "Moscow (UTC+3)"  # its button in the sales bot
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TOKEN = re.compile(r"^\s+(\d+:[\w-]{30,})\s*$")
IMAGE = "botfleet:latest"


# -- botfleet up as a subprocess --------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_skip_reason() -> str | None:
    """Why the docker runtime cannot run here (no engine, or the image is not built), or None."""
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "no docker CLI or engine"
    if info.returncode != 0:
        return "no Docker engine answers (start dockerd)"
    image = subprocess.run(
        ["docker", "image", "inspect", IMAGE], capture_output=True, timeout=20, check=False
    )
    if image.returncode != 0:
        return f"image {IMAGE} is not built (run .ci/build-image.sh)"
    return None


@dataclass
class Banner:
    """What ``botfleet up`` printed: where everything is, the admin key, the tokens to sell."""

    api_url: str
    admin_key: str
    emulator_url: str
    web_url: str
    yookassa_api_url: str
    runtime: str
    tokens: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Banner:
        """Read the banner; a missing line raises ``ValueError`` naming it."""

        def line(label: str) -> str:
            found = re.search(rf"^{re.escape(label)}:\s+(\S+)", text, re.MULTILINE)
            if found is None:
                raise ValueError(f"`botfleet up` printed no {label!r} line:\n{text}")
            return found.group(1)

        runtime = re.search(r"^Deploy worker:\s+runtime (\w+)", text, re.MULTILINE)
        return cls(
            api_url=line("Control plane API"),
            admin_key=line("Admin API key"),
            emulator_url=line("Telegram emulator"),
            web_url=line("Sandbox web page"),
            yookassa_api_url=line("YooKassa stand-in"),
            runtime=runtime.group(1) if runtime else "",
            tokens=[m.group(1) for m in map(TOKEN.match, text.splitlines()) if m],
        )


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``BOTFLEET_*`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTFLEET_")}
    env.update(settings)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class UpProcess:
    """``python -m cli.main up`` in its own process group, output to files under ``logs``.

    ``start()`` waits for the banner; ``interrupt()`` is Ctrl-C and returns the exit code; ``kill()``
    (safe to call always, e.g. in a ``finally``) kills whatever of the group is left.
    """

    def __init__(
        self,
        *,
        cwd: Path,
        env: dict[str, str],
        logs: Path,
        port: int | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.cwd = cwd
        self.env = env
        self.logs = logs
        self.args = [str(VENV_PYTHON), "-m", "cli.main", "up"]
        if port is not None:
            self.args += ["--port", str(port)]
        if data_dir is not None:
            self.args += ["--data-dir", str(data_dir)]
        self.process: subprocess.Popen[bytes] | None = None
        self.banner: Banner | None = None

    @property
    def stdout(self) -> str:
        path = self.logs / "up.stdout"
        return path.read_text(errors="replace") if path.exists() else ""

    def stderr_tail(self, lines: int = 40) -> str:
        path = self.logs / "up.stderr"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process (output to ``logs/up.stdout`` and ``logs/up.stderr``)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / "up.stdout", "wb") as out, open(self.logs / "up.stderr", "wb") as err:
            self.process = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self.process

    async def start(self, *, timeout: float = 120.0) -> Banner:
        """Start ``up`` and return its banner once it says it is up."""
        process = self.spawn()
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C to stop." not in self.stdout:
            if process.poll() is not None:
                raise RuntimeError(
                    f"`botfleet up` exited with {process.returncode} before it was up:\n"
                    f"{self.stdout}\n{self.stderr_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"`botfleet up` not up in {timeout:.0f} s:\n{self.stderr_tail()}"
                )
            await asyncio.sleep(0.2)
        self.banner = Banner.parse(self.stdout)
        return self.banner

    async def interrupt(self, *, timeout: float = 60.0) -> int:
        """Ctrl-C as a terminal sends it (SIGINT to the whole foreground process group, children
        that did not detach included); the exit code."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"`botfleet up` still running {timeout:.0f} s after Ctrl-C")
            await asyncio.sleep(0.1)
        return int(self.process.returncode)

    def kill(self) -> None:
        """Kill ``up``, its process group and what detached from it but still runs in its working
        folder (forked tenant bots start sessions of their own); for teardown after a failure."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        for pid, _ in processes_under(self.cwd):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def processes_under(root: Path) -> list[tuple[int, str]]:
    """Live processes whose command line or working directory mentions ``root`` (leftovers)."""
    found = []
    needle = str(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (needle in cmdline or cwd.startswith(needle)) and pid_alive(int(entry.name)):
            found.append((int(entry.name), cmdline.strip()))
    return found


# -- a scratch database and cleanup of cluster-wide names --------------------------------------------


@asynccontextmanager
async def scratch_database(server_url: str, *, role_prefix: str) -> AsyncIterator[str]:
    """An empty database of its own on the server of ``server_url`` (the worker of an ``up`` scans
    every tenant of its database, so it must not share one with other tests); afterwards every role
    starting with ``role_prefix`` and the database are dropped."""
    name = "bfe2e_" + secrets.token_hex(5)
    url = await create_database(server_url, name)
    try:
        yield url
    finally:
        # The database and the roles, on the session's background thread (tests/support/databases.py).
        drop_later(server_url, name, role_prefix=role_prefix)


async def drop_redis_users(redis_url: str, *, role_prefix: str) -> None:
    """Delete the ACL users starting with ``role_prefix`` and the installation's keys
    (``<role_prefix>:...``: its tenants' and its platform's)."""
    redis = Redis.from_url(redis_url)
    try:
        for raw in await redis.execute_command("ACL", "USERS"):
            user = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not user.startswith(role_prefix):
                continue
            await redis.execute_command("ACL", "DELUSER", user)
        keys = [key async for key in redis.scan_iter(match=f"{role_prefix}:*", count=1000)]
        if keys:
            await redis.unlink(*keys)
    finally:
        await redis.aclose()


def remove_containers(namespace: str) -> None:
    """Remove docker containers of one installation (containers outlive ``up`` on purpose)."""
    with contextlib.suppress(Exception):
        import docker

        client = docker.from_env(timeout=20)
        try:
            for container in client.containers.list(
                all=True, filters={"label": f"botfleet.namespace={namespace}"}
            ):
                container.remove(force=True)
        finally:
            client.close()


# -- people in the sandbox ---------------------------------------------------------------------------


def text_of(message: dict[str, Any] | None) -> str:
    """A message's text or caption ("" for none)."""
    if message is None:
        return ""
    return str(message.get("text") or message.get("caption") or "")


def buttons_of(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The inline buttons of a message, row after row."""
    if message is None:
        return []
    markup = message.get("inline_keyboard") or (message.get("reply_markup") or {}).get(
        "inline_keyboard"
    )
    return [button for row in markup or [] for button in row]


def _view(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (m["message_id"], text_of(m), str(m.get("inline_keyboard")), m.get("edit_date"))
        for m in messages
        if m["from"] == "bot"
    ]


async def reply(
    user: TelegramUser,
    fragment: str,
    *,
    before: list[tuple[Any, ...]] | None = None,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """The bot's newest message once it contains ``fragment`` (and, given ``before``, once the bot's
    messages changed since then). Long-polls the chat; fails with the last message it saw."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        chat = await user.chat()
        from_bot = [m for m in chat["messages"] if m["from"] == "bot"]
        last = from_bot[-1] if from_bot else None
        changed = before is None or _view(chat["messages"]) != before
        if last is not None and changed and fragment in text_of(last):
            return last
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no bot message with {fragment!r}; the last one: {text_of(last)}")
        with contextlib.suppress(TimeoutError):
            await user.wait_for_change(chat["version"], timeout=min(remaining, 5.0))


async def any_message(
    user: TelegramUser, fragment: str, *, timeout: float = 20.0
) -> dict[str, Any]:
    """A bot message anywhere in the chat containing ``fragment`` (notifications may be followed by
    other messages before we look)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        chat = await user.chat()
        for message in reversed(chat["messages"]):
            if message["from"] == "bot" and fragment in text_of(message):
                return message  # type: ignore[no-any-return]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no bot message with {fragment!r} in chat {user.bot_id}")
        with contextlib.suppress(TimeoutError):
            await user.wait_for_change(chat["version"], timeout=min(remaining, 5.0))


# A person taps about once a second; scripted users faster than that trip the bots' per-user rate
# limits (the tenant bot ignores a user's 13th update within 10 s) and Telegram's flood control.
HUMAN_PACE_S = 1.0
_last_action: dict[tuple[int, int], float] = {}


async def _pace(user: TelegramUser) -> None:
    """Wait until this user's previous action is ``HUMAN_PACE_S`` ago."""
    key = (user.bot_id, user.id)
    wait = _last_action.get(key, 0.0) + HUMAN_PACE_S - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)
    _last_action[key] = time.monotonic()


async def say(
    user: TelegramUser, text: str, expect: str, *, timeout: float = 20.0
) -> dict[str, Any]:
    """Send ``text`` (at a person's pace); the bot's answer containing ``expect``."""
    await _pace(user)
    before = _view(await user.messages())
    await user.send(text)
    return await reply(user, expect, before=before, timeout=timeout)


async def tap(
    user: TelegramUser,
    expect: str,
    *,
    text: str | None = None,
    pick: Callable[[str], bool] | None = None,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Tap the newest bot message's inline button labelled ``text`` (or the first whose label
    satisfies ``pick``) at a person's pace; the bot's answer containing ``expect``."""
    await _pace(user)
    messages = await user.messages()
    last = next((m for m in reversed(messages) if m["from"] == "bot"), None)
    labels = [b["text"] for b in buttons_of(last)]
    label = text if text is not None else next((t for t in labels if pick and pick(t)), None)
    if label is None or label not in labels:
        raise AssertionError(f"no button {text or 'matching'!r} under {text_of(last)!r}: {labels}")
    await user.click(label, message_id=last["message_id"] if last else None)
    return await reply(user, expect, before=_view(messages), timeout=timeout)


def bot_id_of(token: str) -> int:
    """The bot id is the token's number before the colon."""
    return int(token.split(":", 1)[0])


async def sales_bot_id(sandbox: TelegramSandbox) -> int:
    """The sales bot's id, found by its username in the emulator."""
    for bot in (await sandbox.state())["bots"]:
        if bot.get("username") == SALES_BOT_USERNAME:
            return int(bot["id"])
    raise AssertionError(f"@{SALES_BOT_USERNAME} is not registered in the emulator")


async def buy_bot(owner: TelegramUser, *, token: str, business: str, plan: str = PLAN_LABEL) -> str:
    """The owner buys a bot in the sales bot (plan, name, token, zone, language, manual payment);
    returns the YooKassa confirmation URL of the "Pay" button."""
    await say(owner, "/start", "botfleet")
    await tap(owner, "Choose one", text="🛒 Plans and purchase")
    await tap(owner, "What is your business called", text=plan)
    await say(owner, business, "@BotFather")
    await say(owner, token, "time zone")
    await tap(owner, "language", text=OWNER_ZONE_LABEL)
    await tap(owner, "Renew automatically", text="English")
    pay = await tap(owner, "Press the button to pay", text="No, I'll pay myself")
    urls = [b["url"] for b in buttons_of(pay) if b.get("url")]
    assert len(urls) == 1, f"one pay link expected: {pay}"
    return str(urls[0])


async def press_pay(confirmation_url: str) -> None:
    """Press **Pay** on the YooKassa checkout page (its form POST; the page answers 303)."""
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(confirmation_url.rstrip("/") + "/pay")
    assert response.status_code == 303, response.text


def tomorrow_weekday(zone: str = OWNER_ZONE) -> str:
    """The short English weekday name of tomorrow in ``zone``."""
    return WEEKDAYS[(datetime.now(ZoneInfo(zone)) + timedelta(days=1)).weekday()]


async def owner_sets_up(
    owner: TelegramUser, *, owner_name: str = "Ivan", hours: str = "09:00-18:00"
) -> str:
    """In the new bot's /admin: a service, then working hours tomorrow for the owner, who is the
    staff member (named ``owner_name``, their Telegram name) without adding themself. Returns the
    service's name."""
    await say(owner, "/admin", "Owner menu")
    await tap(owner, "Services", text="💈 Services")
    await tap(owner, "name; minutes; price", text="➕ Add a service")
    await say(owner, "Haircut; 60; 1500", "Haircut")
    await say(owner, "/admin", "Owner menu")
    await tap(owner, "Staff: 1", text="👥 Staff & hours")
    await tap(owner, "Services: Haircut", text=owner_name)
    day = tomorrow_weekday()
    await tap(owner, "tap a day to change it", text="🕘 Working hours")
    await tap(owner, "Send the hours", text=f"{day}: day off")
    await say(owner, hours, f"{day}: {hours}")
    return "Haircut"


def _is_free_day(label: str) -> bool:
    return label.isdigit()


def _is_time(label: str) -> bool:
    return re.fullmatch(r"\d\d:\d\d", label) is not None


async def customer_books(customer: TelegramUser, *, name: str, phone: str) -> dict[str, Any]:
    """The customer books the first free time of the first free day; the bot's confirmation."""
    await say(customer, "/start", "")
    await say(customer, "/book", "Choose a service")
    calendar = await tap(customer, "Choose a day", pick=lambda t: t.startswith("Haircut"))
    if not any(_is_free_day(b["text"]) for b in buttons_of(calendar)):
        await tap(customer, "Choose a day", text="▶")  # tomorrow is in the next month
    await tap(customer, "choose a time", pick=_is_free_day)
    await tap(customer, "What name", pick=_is_time)
    await say(customer, name, "phone number")
    await say(customer, phone, "Please check your booking")
    return await tap(customer, "You are booked", text="✅ Confirm")


# -- the REST API ------------------------------------------------------------------------------------


class AdminApi:
    """The control plane's ``/api/v1`` with the admin key ``up`` printed."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=20
        )

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    async def tenant_of_bot(self, bot_id: int) -> dict[str, Any]:
        """The tenant whose bot is ``bot_id`` (walking the cursor pages)."""
        cursor: str | None = None
        while True:
            page = await self.get("/tenants", **({"cursor": cursor} if cursor else {}))
            for tenant in page["items"]:
                if tenant["bot_id"] == bot_id:
                    return tenant  # type: ignore[no-any-return]
            cursor = page.get("next_cursor")
            if not cursor:
                raise AssertionError(f"no tenant with bot {bot_id}")

    async def wait_deployment(
        self, slug: str, status: str = "running", *, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The tenant's deployment once it reaches ``status``."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.http.get(f"/tenants/{slug}/deployment")
            if response.status_code == 200 and response.json()["status"] == status:
                return response.json()  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise AssertionError(f"deployment of {slug} not {status}: {response.text}")
            await asyncio.sleep(0.3)

    async def aclose(self) -> None:
        await self.http.aclose()


async def poll(check: Callable[[], Awaitable[Any]], what: str, *, timeout: float = 30.0) -> Any:
    """Await ``check()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


StartPlatform = Callable[..., Awaitable[UpProcess]]


# -- slow payers: the checkout page's Cancel, counting notices, waiting out reconciler passes --------


async def press_cancel(confirmation_url: str) -> None:
    """Press **Cancel** on the YooKassa checkout page (the payer gives up; the page answers 303)."""
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(confirmation_url.rstrip("/") + "/cancel")
    assert response.status_code == 303, response.text


async def count_messages(user: TelegramUser, fragment: str) -> int:
    """How many of the bot's messages in the user's chat contain ``fragment``."""
    return sum(1 for m in await user.messages() if m["from"] == "bot" and fragment in text_of(m))


async def notices_settle(
    user: TelegramUser, fragments: list[str], *, quiet_s: float = 4.0
) -> dict[str, int]:
    """How often each of ``fragments`` appears in the user's chat with the bot, once the counts
    have not changed for ``quiet_s`` seconds (a duplicate delivered late is counted too)."""

    async def counts() -> dict[str, int]:
        return {fragment: await count_messages(user, fragment) for fragment in fragments}

    seen = await counts()
    loop = asyncio.get_running_loop()
    stable_since = loop.time()
    while loop.time() - stable_since < quiet_s:
        await asyncio.sleep(0.5)
        now = await counts()
        if now != seen:
            seen, stable_since = now, loop.time()
    return seen
