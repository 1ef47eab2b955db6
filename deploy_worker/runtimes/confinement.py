"""Confinement of forked tenant bots: each bot its own unprivileged uid, in its own cgroups.

The process runtime forks every bot from one warm server. Unconfined, a bot would run as the worker's
user (root on a typical host), read the worker's ``/proc/<pid>/environ`` (master key, superuser
connection string), signal other bots and use the host's memory, pids and CPU without bound. Here the
worker, before each spawn:

- gives the bot a uid of its own, from a range of 65,536 uids per installation (derived from the
  namespace, or ``BOTFLEET_PROCESS_UID_BASE``), kept in the bot's state file across restarts; the
  forked child drops to it (no supplementary groups, ``no_new_privs``, no core dumps) before it runs
  the bot, so it can neither read another uid's ``/proc/<pid>/environ`` nor signal another bot;
- creates one cgroup per bot under the worker's own cgroup (so the limits of the host's unit or
  container still apply) with the spec's memory, pids and CPU limits — cgroup v1 controllers where a
  v1 hierarchy is mounted for them, else v2 — that the child joins before dropping root.

A uid needs root; cgroups need write access to the hierarchy. :meth:`Confinement.probe` says which
parts this host allows; what it cannot do is named (``gaps``) and, with ``mode="required"``, refused.

Blocking file I/O throughout: call from a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fleet.errors import ConfigError

log = logging.getLogger(__name__)

Mode = Literal["required", "best-effort", "off"]

UIDS_PER_INSTALLATION = 65_536
# Installations' uid ranges start here: above every uid a distribution hands out (and above the
# usual subuid ranges for user namespaces), one 65,536-wide slot per namespace hash.
UID_FLOOR = 100_000_000
_UID_SLOTS = 4096
CPU_PERIOD_US = 100_000
CONTROLLERS = ("memory", "pids", "cpu")


class ConfinementUnavailable(ConfigError):
    """``mode="required"`` but this host cannot confine bots; the message says what is missing."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    pids: int
    cpus: float


@dataclass(frozen=True)
class Jail:
    """What a forked child applies to itself before running the bot (sent in the spawn request)."""

    uid: int | None = None
    cgroups: tuple[str, ...] = ()

    def as_request(self) -> dict[str, object]:
        return {"uid": self.uid, "cgroups": list(self.cgroups)}


@dataclass
class _Hierarchy:
    """Where one controller's cgroups for this worker go."""

    version: int
    controllers: tuple[str, ...]
    base: Path  # the worker's own cgroup in this hierarchy


@dataclass
class Confinement:
    """Prepares uids and cgroups for the bots of one namespace (see the module docstring)."""

    namespace: str
    mode: Mode = "best-effort"
    uid_base: int | None = None
    cgroup_root: Path = Path("/sys/fs/cgroup")
    proc: Path = Path("/proc")
    _hierarchies: list[_Hierarchy] = field(default_factory=list, init=False)
    _uids: bool = field(default=False, init=False)
    gaps: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.uid_base is None:
            digest = hashlib.sha256(self.namespace.encode()).digest()
            slot = int.from_bytes(digest[:4], "big") % _UID_SLOTS
            self.uid_base = UID_FLOOR + slot * UIDS_PER_INSTALLATION

    # -- what this host allows -------------------------------------------------------------------

    def probe(self) -> list[str]:
        """Find what can be applied here; returns (and keeps in :attr:`gaps`) what cannot. Raises
        :class:`ConfinementUnavailable` for ``mode="required"`` when anything is missing."""
        self.gaps = []
        self._hierarchies = []
        if self.mode == "off":
            self.gaps = ["confinement is off (BOTFLEET_PROCESS_CONFINEMENT=off)"]
            return self.gaps
        self._uids = os.geteuid() == 0
        if not self._uids:
            self.gaps.append(
                "bots run as the worker's own user (a uid per bot needs the worker to run as root)"
            )
        found = self._discover()
        for controller in CONTROLLERS:
            if not any(controller in h.controllers for h in found):
                self.gaps.append(
                    f"no writable {controller} cgroup: bots have no {controller} limit"
                )
        self._hierarchies = found
        if self.gaps and self.mode == "required":
            raise ConfinementUnavailable(
                "BOTFLEET_PROCESS_CONFINEMENT=required but "
                + "; ".join(self.gaps)
                + " — run the worker as root on a host with writable cgroups, use "
                "BOTFLEET_RUNTIME=docker, or set BOTFLEET_PROCESS_CONFINEMENT=best-effort"
            )
        return self.gaps

    @property
    def confines_uid(self) -> bool:
        return self._uids

    def uid_for(self, index: int) -> int:
        """The uid of the bot in slot ``index`` (0 .. 65,535) of this installation's range."""
        if not 0 <= index < UIDS_PER_INSTALLATION:
            raise ConfinementUnavailable(
                f"process runtime: all {UIDS_PER_INSTALLATION} bot uids of this installation are in use"
            )
        assert self.uid_base is not None
        return self.uid_base + index

    def free_uid(self, taken: Iterable[int | None]) -> int | None:
        """The lowest uid of this installation's range not in ``taken`` (None: no uid switching)."""
        if not self._uids:
            return None
        used = {uid for uid in taken if uid is not None}
        index = 0
        while self.uid_for(index) in used:
            index += 1
        return self.uid_for(index)

    # -- per bot ---------------------------------------------------------------------------------

    def prepare(self, instance: str, *, uid: int | None, limits: Limits) -> Jail:
        """Create (or update) the bot's cgroups with ``limits``; the jail its child applies."""
        paths: list[str] = []
        for hierarchy in self._hierarchies:
            group = hierarchy.base / self._group()
            group.mkdir(exist_ok=True)
            if (
                hierarchy.version == 2
            ):  # v2: processes only in leaves; the group hands controllers down
                controllers = " ".join(f"+{c}" for c in hierarchy.controllers)
                (group / "cgroup.subtree_control").write_text(controllers)
            directory = group / instance
            directory.mkdir(exist_ok=True)
            for name, value in _limit_files(hierarchy, limits):
                (directory / name).write_text(value)
            paths.append(str(directory))
        return Jail(uid=uid if self._uids else None, cgroups=tuple(paths))

    def release(self, instance: str) -> None:
        """Remove the bot's cgroups (once its processes are gone; a busy one is left and logged)."""
        for hierarchy in self._hierarchies:
            directory = hierarchy.base / self._group() / instance
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning(
                    "bot cgroup not removed", extra={"cgroup": str(directory), "error": str(exc)}
                )
                continue
            with contextlib.suppress(OSError):  # the installation's group, once its last bot goes
                directory.parent.rmdir()

    def usage(self, instance: str) -> dict[str, int]:
        """Current memory bytes and pids of the bot's cgroups (what the limits are measured on)."""
        found: dict[str, int] = {}
        for hierarchy in self._hierarchies:
            directory = hierarchy.base / self._group() / instance
            for key, name in (
                ("memory", "memory.usage_in_bytes" if hierarchy.version == 1 else "memory.current"),
                ("pids", "pids.current"),
            ):
                if key in hierarchy.controllers:
                    with contextlib.suppress(OSError, ValueError):
                        found[key] = int((directory / name).read_text().split()[0])
        return found

    def _group(self) -> str:
        return f"botfleet-{self.namespace.strip('_') or 'default'}"

    # -- discovery -------------------------------------------------------------------------------

    def _discover(self) -> list[_Hierarchy]:
        own = _own_cgroups(self.proc / "self" / "cgroup")
        found: list[_Hierarchy] = []
        covered: set[str] = set()
        for controller in CONTROLLERS:  # v1: one hierarchy per controller, where mounted
            if controller in covered:
                continue
            mount = self.cgroup_root / controller
            path = own.get(controller)
            if path is None or not (mount / "cgroup.procs").exists():
                continue
            base = mount / path.lstrip("/")
            if _writable_group(base / self._group()):
                found.append(_Hierarchy(version=1, controllers=(controller,), base=base))
                covered.add(controller)
        missing = [c for c in CONTROLLERS if c not in covered]
        if missing and "" in own:  # v2 for the rest, where the unified hierarchy has them
            hierarchy = self._unified(own[""], missing)
            if hierarchy is not None:
                found.append(hierarchy)
        return found

    def _unified(self, path: str, wanted: list[str]) -> _Hierarchy | None:
        mount = self.cgroup_root
        if not (mount / "cgroup.controllers").exists():
            mount = self.cgroup_root / "unified"
        if not (mount / "cgroup.controllers").exists():
            return None
        base = mount / path.lstrip("/")
        try:
            available = (base / "cgroup.controllers").read_text().split()
        except OSError:
            return None
        usable = tuple(c for c in wanted if c in available)
        if not usable:
            return None
        group = base / self._group()
        existed = group.exists()
        try:
            group.mkdir(exist_ok=True)
            # v2 allows processes only in leaves: the group holds none, and hands the controllers
            # down to the bots' cgroups under it.
            (group / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in usable))
        except OSError:
            return None
        finally:
            if not existed:
                with contextlib.suppress(OSError):
                    group.rmdir()  # made again by the first bot: a probe leaves nothing behind
        return _Hierarchy(version=2, controllers=usable, base=base)


def _own_cgroups(path: Path) -> dict[str, str]:
    """``{controller: path}`` of this process (``""`` for the unified v2 hierarchy)."""
    found: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, where = parts
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = where
    return found


def _writable_group(group: Path) -> bool:
    """Whether bots' cgroups can be made under ``group`` (made and removed again to find out)."""
    existed = group.exists()
    try:
        group.mkdir(exist_ok=True)
    except OSError:
        return False
    writable = os.access(group, os.W_OK)
    if not existed:
        with contextlib.suppress(OSError):
            group.rmdir()
    return writable


def _limit_files(hierarchy: _Hierarchy, limits: Limits) -> list[tuple[str, str]]:
    quota = max(1000, int(limits.cpus * CPU_PERIOD_US))
    files: list[tuple[str, str]] = []
    for controller in hierarchy.controllers:
        if controller == "memory":
            name = "memory.limit_in_bytes" if hierarchy.version == 1 else "memory.max"
            files.append((name, str(limits.memory_bytes)))
        elif controller == "pids":
            files.append(("pids.max", str(limits.pids)))
        elif controller == "cpu" and hierarchy.version == 1:
            files += [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", str(quota))]
        elif controller == "cpu":
            files.append(("cpu.max", f"{quota} {CPU_PERIOD_US}"))
    return files
