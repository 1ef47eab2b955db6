"""``botfleet up`` restarted within a minute gets its ports back (issue 16 item 3): a port whose last
connections are in TIME_WAIT is free for a server, only a listener makes it taken, and a port chosen
at random is remembered in the data dir."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from cli.embedded import EmbeddedRedis, free_port, remembered_port


@contextmanager
def _listener(host: str = "127.0.0.1", port: int = 0) -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, port))
        server.listen()
        yield server


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def _port_in_time_wait() -> int:
    """A port nothing listens on any more whose server closed a connection first, as a server that
    stops does: that side of the connection stays in TIME_WAIT for a minute."""
    with _listener() as server:
        client = socket.create_connection(("127.0.0.1", _port(server)))
        conn, _ = server.accept()
        conn.close()
        client.close()
        return _port(server)


def _is_time_wait(port: int) -> bool:
    """A plain bind (no SO_REUSEADDR, as ``free_port`` did) fails while TIME_WAIT holds the port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_a_port_in_time_wait_is_chosen_again() -> None:
    port = _port_in_time_wait()
    assert _is_time_wait(port), "the test did not leave the port in TIME_WAIT"
    assert free_port(port) == port


@pytest.mark.parametrize("bound_to", ["127.0.0.1", "0.0.0.0"])  # noqa: S104
def test_a_port_a_server_listens_on_is_not_chosen(bound_to: str) -> None:
    with _listener(bound_to) as server:
        port = _port(server)
        chosen = free_port(port)
    assert chosen not in (port, 0)


def test_the_remembered_port_wins_then_the_default_then_a_random_one(tmp_path: Path) -> None:
    memory = tmp_path / "data" / "telegram.port"
    memory.parent.mkdir()
    with _listener() as default_server, _listener() as remembered_server:
        default, remembered = _port(default_server), _port(remembered_server)
        memory.write_text(str(remembered))
        chosen = remembered_port(memory, default)
        assert chosen not in (default, remembered), "both are taken: a random port"
        assert memory.read_text() == str(chosen)
    # The random port is remembered: the next start gets it again, not the (now free) default.
    assert remembered_port(memory, default) == chosen
    remembered_elsewhere = tmp_path / "other.port"
    remembered_elsewhere.write_text(str(remembered))
    assert remembered_port(remembered_elsewhere, default) == remembered


def test_a_missing_or_broken_memory_gives_the_default(tmp_path: Path) -> None:
    with _listener() as server:
        taken = _port(server)
    memory = tmp_path / "yookassa.port"
    assert remembered_port(memory, taken) == taken
    memory.write_text("not a port")
    assert remembered_port(memory, taken) == taken
    assert memory.read_text() == str(taken)


async def test_embedded_redis_restarted_at_once_keeps_its_port(tmp_path: Path) -> None:
    root = tmp_path / "redis"
    root.mkdir()
    with _listener() as server:
        port = _port(server)
    (root / "port").write_text(str(port))  # not the shared default 63799: tests run in parallel
    redis = EmbeddedRedis(root=root)
    await redis.start()
    try:
        assert redis.port == port
        client = Redis.from_url(redis.url)
        assert await client.ping()
        await redis.stop()  # the server closes the client's connection first: TIME_WAIT
        await client.aclose()
        assert _is_time_wait(port)
        await redis.start()
        assert redis.port == port
        client = Redis.from_url(redis.url)
        assert await client.ping()
        await client.aclose()
    finally:
        await redis.stop()


async def test_the_sandbox_web_page_restarted_at_once_keeps_its_port(tmp_path: Path) -> None:
    """What `botfleet up` does for the emulator: an open tab's connection, a stop, a start."""
    from sandbox.telegram import TelegramEmulator

    memory = tmp_path / "telegram.port"
    with _listener() as server:
        memory.write_text(str(_port(server)))
    # The emulator stops first, closing the open tab's keep-alive connection: TIME_WAIT on its side.
    async with (
        httpx.AsyncClient() as tab,
        TelegramEmulator.start(port=remembered_port(memory, 8081)) as tg,
    ):
        first = tg.web_url
        assert (await tab.get(first)).status_code == 200
    assert _is_time_wait(int(memory.read_text()))
    port = int(memory.read_text())
    async with TelegramEmulator.start(port=remembered_port(memory, 8081)) as tg:
        assert tg.web_url == first
        async with httpx.AsyncClient() as tab:
            assert (await tab.get(tg.web_url)).status_code == 200
    assert int(memory.read_text()) == port
