"""Issue 14 item 8: a forked bot runs under a uid of its own, in cgroups of its own, with limits.

Each test forks real 'bots' from the process runtime's fork server (entry points in
``tests/support/confinement_probe.py``) and has them attack: read the worker's environment and the
other bot's, signal them, take root back, eat memory, spawn threads. This machine's worker is root
with writable cgroup v1 controllers, as the issue says; elsewhere the confinement is refused when
required.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy_worker.runtimes.confinement import Confinement, ConfinementUnavailable
from deploy_worker.runtimes.process import ProcessRuntime
from deploy_worker.spec import TENANT_PIDS_LIMIT, RuntimeSpec, instance_name

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a uid per bot needs a root worker")
PROBE = "tests.support.confinement_probe"


def _spec(namespace: str, slug: str, entry: str, memory_mb: int = 384, **env: str) -> RuntimeSpec:
    return RuntimeSpec(
        slug=slug,
        namespace=namespace,
        image="process",
        command=(),
        entrypoint=f"{PROBE}:{entry}",
        env={"PROBE_WORKER_PID": str(os.getpid()), **env},
        memory_mb=memory_mb,
        cpus=0.25,
        stop_timeout=2,
    )


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    namespace = f"cf{secrets.token_hex(3)}_"
    runtime = ProcessRuntime(
        namespace=namespace,
        state_dir=tmp_path / "processes",
        preload=[PROBE],
        warm_up=(),
        backoff_base=0.2,
        confinement=Confinement(namespace=namespace, mode="required"),
    )
    await runtime.warm_up()
    try:
        yield runtime
    finally:
        await runtime.shutdown_all()
        for slug in ("a", "b", "hog", "threads"):
            await runtime.remove(slug)
        await runtime.close()


async def _report(runtime: ProcessRuntime, slug: str, key: str) -> dict[str, object]:
    """The last JSON line holding ``key`` that the bot printed (waits for one)."""
    for _ in range(300):
        for line in reversed((await runtime.logs(slug)).splitlines()):
            if line.startswith("{") and key in line:
                return json.loads(line)  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{slug} printed nothing with {key!r}: {await runtime.logs(slug)}")


def _pid_of(runtime: ProcessRuntime, slug: str) -> int:
    return runtime._children[slug].pid  # type: ignore[return-value]


@ROOT_ONLY
async def test_a_bot_cannot_read_or_signal_the_worker_or_another_bot(
    runtime: ProcessRuntime,
) -> None:
    ns = runtime.namespace
    await runtime.ensure(_spec(ns, "a", "spy"))
    a = await _report(runtime, "a", "uid")
    await runtime.ensure(_spec(ns, "b", "spy", PROBE_OTHER_PID=str(_pid_of(runtime, "a"))))
    b = await _report(runtime, "b", "uid")

    for report in (a, b):
        assert report["uid"] == report["euid"] and report["uid"] == report["gid"]
        assert int(report["uid"]) >= 100_000_000 and report["groups"] == []  # type: ignore[arg-type]
        assert report["worker_environ"] == "denied"  # the master key stays the worker's
        assert report["signal_worker"] == "denied"
        assert report["become_root"] == "denied"
        assert report["no_new_privs"] == "1"
    assert a["uid"] != b["uid"]
    assert b["other_environ"] == "denied" and b["signal_other"] == "denied"
    assert (await runtime.status("a")).state == "running"  # B's SIGTERM did not land

    # In its own cgroups, with the spec's limits.
    name = instance_name(ns, "b")
    for controller in ("memory", "pids", "cpu"):
        assert any(
            line.split(":")[1] == controller and line.endswith(f"/{name}")
            for line in str(b["cgroups"]).splitlines()
        ), b["cgroups"]
    group = Path("/sys/fs/cgroup/memory") / _own("memory") / f"botfleet-{ns.strip('_')}" / name
    assert int((group / "memory.limit_in_bytes").read_text()) == 384 * 1024 * 1024
    pids = Path("/sys/fs/cgroup/pids") / _own("pids") / f"botfleet-{ns.strip('_')}" / name
    assert (pids / "pids.max").read_text().strip() == str(TENANT_PIDS_LIMIT)
    cpu = Path("/sys/fs/cgroup/cpu") / _own("cpu") / f"botfleet-{ns.strip('_')}" / name
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"  # 0.25 CPU
    usage = await asyncio.to_thread(runtime.confinement_usage, "b")
    assert usage["memory"] > 0 and usage["pids"] >= 1

    # A restart keeps the bot's uid; removing the bot removes its cgroups.
    await runtime.stop("a")
    await runtime.ensure(_spec(ns, "a", "spy"), recreate=True)
    await asyncio.sleep(0.2)
    assert (await _report(runtime, "a", "uid"))["uid"] == a["uid"]
    await runtime.remove("b")
    assert not group.exists() and not pids.exists() and not cpu.exists()


@ROOT_ONLY
async def test_a_bot_eating_memory_is_killed_at_its_limit_and_restarted(
    runtime: ProcessRuntime,
) -> None:
    await runtime.ensure(_spec(runtime.namespace, "hog", "hog_memory", memory_mb=160))
    for _ in range(300):
        if (await runtime.status("hog")).restart_count >= 1:
            break
        await asyncio.sleep(0.1)
    status = await runtime.status("hog")
    assert status.restart_count >= 1, await runtime.logs("hog")
    allocated = [
        json.loads(line)["allocated_mib"]
        for line in (await runtime.logs("hog")).splitlines()
        if line.startswith('{"allocated_mib"')
    ]
    assert allocated and max(allocated) <= 160  # killed at its limit, not at the host's


@ROOT_ONLY
async def test_a_bot_spawning_threads_is_refused_at_its_pids_limit(
    runtime: ProcessRuntime,
) -> None:
    await runtime.ensure(_spec(runtime.namespace, "threads", "spawn_threads"))
    report = await _report(runtime, "threads", "threads")
    assert report["refused"] is not None
    assert int(report["threads"]) < TENANT_PIDS_LIMIT  # type: ignore[arg-type]


async def test_required_confinement_is_refused_where_the_host_cannot_give_it(
    tmp_path: Path,
) -> None:
    """No writable cgroup hierarchy here (an empty directory stands for /sys/fs/cgroup): required
    is a one-line refusal naming what is missing; best-effort names the same gaps and goes on."""
    required = Confinement(namespace="cf_", mode="required", cgroup_root=tmp_path)
    with pytest.raises(ConfinementUnavailable) as refused:
        required.probe()
    message = str(refused.value)
    assert "no writable memory cgroup" in message and "BOTFLEET_RUNTIME=docker" in message
    assert "\n" not in message
    relaxed = Confinement(namespace="cf_", mode="best-effort", cgroup_root=tmp_path)
    gaps = relaxed.probe()
    assert any("pids" in gap for gap in gaps)
    # Two installations get disjoint uid ranges by default.
    one, two = Confinement(namespace="alpha_"), Confinement(namespace="beta_")
    assert one.uid_base != two.uid_base and one.uid_base is not None and two.uid_base is not None
    assert abs(one.uid_base - two.uid_base) >= 65_536


def _own(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.lstrip("/")
    return ""
