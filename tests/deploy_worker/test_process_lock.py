"""One worker per process-runtime state directory: a second one fails fast, naming the directory."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from deploy_worker.errors import StateDirLocked
from deploy_worker.runtimes.process import LOCK_FILE, ProcessRuntime

ROOT = Path(__file__).resolve().parents[2]

# A second interpreter holding the lock the way a worker does, until its stdin closes.
_HOLDER = """
import asyncio, sys
from pathlib import Path
from deploy_worker.runtimes.process import ProcessRuntime

async def main():
    rt = ProcessRuntime(namespace="lk_", state_dir=Path(sys.argv[1]))
    await rt.list_by_label()  # first use takes the lock
    print("locked", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await rt.close()

asyncio.run(main())
"""


async def test_second_runtime_on_a_state_dir_fails_fast(tmp_path: Path) -> None:
    state = tmp_path / "processes"
    first = ProcessRuntime(namespace="lk_", state_dir=state)
    second = ProcessRuntime(namespace="lk_", state_dir=state)
    try:
        assert await first.list_by_label() == []
        with pytest.raises(StateDirLocked) as raised:
            await asyncio.wait_for(second.warm_up(), 5)  # fails at once, does not wait
        message = str(raised.value)
        assert str(state) in message and "BOTFLEET_PROCESS_STATE_DIR" in message
        with pytest.raises(StateDirLocked):
            await second.list_by_label()
        # An observer (fleet status) reads beside the owner, takes no lock and changes nothing.
        observer = ProcessRuntime(namespace="lk_", state_dir=state, observer=True)
        assert await observer.list_by_label() == []
        with pytest.raises(StateDirLocked):
            await observer.stop("anyone")
        await observer.close()
    finally:
        await first.close()
        await second.close()
    # Released on close: the next worker gets the directory.
    third = ProcessRuntime(namespace="lk_", state_dir=state)
    try:
        assert await third.list_by_label() == []
    finally:
        await third.close()


async def test_lock_is_held_across_processes_and_dropped_when_the_holder_dies(
    tmp_path: Path,
) -> None:
    state = tmp_path / "processes"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        str(state),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 60)
        assert line.strip() == b"locked"
        other = ProcessRuntime(namespace="lk_", state_dir=state)
        with pytest.raises(StateDirLocked) as raised:
            await other.list_by_label()
        assert f"pid {holder.pid}" in str(raised.value) and str(state) in str(raised.value)
        assert (state / LOCK_FILE).exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock
        await holder.wait()
    survivor = ProcessRuntime(namespace="lk_", state_dir=state)
    try:
        assert await survivor.list_by_label() == []
    finally:
        await survivor.close()
