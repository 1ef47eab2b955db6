"""The supervisor restarts crashed loops with backoff, counts them, and says when a loop is failing or
stuck; its Prometheus view shows the same."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kit.loops import every
from kit.metrics import SupervisorCollector
from kit.supervisor import Supervisor


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_a_crashing_loop_is_logged_counted_restarted_and_turns_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor("test", backoff_initial=0.01, backoff_max=0.05, failing_after=3)
    runs = 0
    crashes: list[tuple[str, str]] = []

    async def broken() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError(f"boom {runs}")

    async def fine() -> None:
        while True:
            supervisor.beat("fine")
            await asyncio.sleep(0.01)

    supervisor.add("broken", broken)
    supervisor.add("fine", fine, stale_after=5)
    supervisor.on_crash(lambda name, exc: crashes.append((name, str(exc))))
    with caplog.at_level(logging.ERROR, logger="kit.supervisor"):
        async with supervisor:
            await wait_for(lambda: runs >= 4)
            assert not supervisor.healthy
            report = supervisor.report()
            unhealthy = supervisor.unhealthy()
    assert report["broken"]["failing"] and not report["broken"]["healthy"]
    assert report["broken"]["restarts"] >= 3
    assert report["broken"]["last_error"].startswith("RuntimeError: boom")
    assert report["fine"]["healthy"] and report["fine"]["restarts"] == 0
    assert unhealthy and unhealthy[0].startswith("broken: failing (RuntimeError: boom")
    assert crashes[0] == ("broken", "boom 1")
    crashed = [r for r in caplog.records if r.getMessage() == "background loop crashed; restarting"]
    assert crashed and crashed[0].exc_info is not None  # with its traceback
    assert crashed[0].loop == "broken" and crashed[0].supervisor == "test"  # type: ignore[attr-defined]


async def test_a_beat_after_a_crash_clears_failing() -> None:
    supervisor = Supervisor("test", backoff_initial=0.01, backoff_max=0.05, failing_after=2)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ValueError("not yet")
        supervisor.beat("flaky")
        await asyncio.Event().wait()

    supervisor.add("flaky", flaky)
    async with supervisor:
        await wait_for(lambda: runs >= 3)
        await asyncio.sleep(0.02)
        assert supervisor.healthy
        assert supervisor.report()["flaky"]["restarts"] == 2


async def test_a_loop_that_stops_beating_turns_stale() -> None:
    supervisor = Supervisor("test")
    stuck = asyncio.Event()

    async def hangs() -> None:
        supervisor.beat("hangs")
        await stuck.wait()  # stuck for good, without a word

    supervisor.add("hangs", hangs, stale_after=0.1)
    async with supervisor:
        await asyncio.sleep(0.02)
        assert supervisor.healthy
        await asyncio.sleep(0.15)
        assert not supervisor.healthy
        assert supervisor.report()["hangs"]["stale"]
        assert supervisor.unhealthy() == ["hangs: no progress for 0s"]


async def test_a_failing_loop_without_beats_recovers_after_a_quiet_run() -> None:
    supervisor = Supervisor("test", backoff_initial=0.01, backoff_max=0.1, failing_after=2)
    runs = 0

    async def polls() -> None:  # like long polling: its progress cannot be observed
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise OSError("network")
        await asyncio.Event().wait()

    supervisor.add("polls", polls)
    async with supervisor:
        await wait_for(lambda: runs >= 3)
        assert not supervisor.healthy
        await asyncio.sleep(0.15)  # longer than backoff_max without a crash
        assert supervisor.healthy


async def test_loops_added_while_running_start_and_stop_with_grace() -> None:
    supervisor = Supervisor("test")
    stop = asyncio.Event()
    passes = 0
    finished_cleanly = False

    async def one_pass() -> None:
        nonlocal passes
        passes += 1

    async def late() -> None:
        nonlocal finished_cleanly
        await every(0.01, one_pass, stop=stop, on_tick=supervisor.beater("late"))
        finished_cleanly = True

    async with supervisor:
        supervisor.add("late", late, stale_after=1)
        await wait_for(lambda: passes >= 3)
        assert supervisor.report()["late"]["running"]
        stop.set()
        await supervisor.stop(grace=1)
    assert finished_cleanly  # returned on its own, not cancelled
    assert not supervisor.report()["late"]["running"]
    with pytest.raises(ValueError):
        supervisor.add("late", late)


async def test_collector_exports_restarts_and_health() -> None:
    supervisor = Supervisor("proc", backoff_initial=0.01, backoff_max=0.05, failing_after=2)

    async def broken() -> None:
        raise RuntimeError("x")

    supervisor.add("broken", broken)
    registry = CollectorRegistry()
    registry.register(SupervisorCollector(supervisor))
    async with supervisor:
        await wait_for(lambda: supervisor.report()["broken"]["restarts"] >= 2)
        text = generate_latest(registry).decode()
    assert 'botfleet_loop_restarts_total{loop="broken",process="proc"}' in text
    assert 'botfleet_loop_healthy{loop="broken",process="proc"} 0.0' in text


async def test_a_loop_that_ignores_cancellation_is_abandoned_with_its_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # the bug this guards against: a cancellation swallowed

    async def polite() -> None:
        await asyncio.sleep(3600)

    supervisor = Supervisor("test")
    supervisor.add("stubborn", stubborn)
    supervisor.add("polite", polite)
    supervisor.start()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="kit.supervisor"):
        await supervisor.stop(timeout=0.5)
    assert time.monotonic() - started < 5  # returned, instead of waiting forever
    [record] = [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert record.loop == "stubborn"  # type: ignore[attr-defined]
    assert "stubborn" in record.stack  # type: ignore[attr-defined]
    assert not any(status.running for status in supervisor)
    release.set()
    [abandoned] = [t for t in asyncio.all_tasks() if t.get_name() == "stubborn"]
    abandoned.cancel()  # swallowed again, but the loop now sees ``release`` and returns
    await asyncio.wait([abandoned], timeout=1)
    assert abandoned.done()
