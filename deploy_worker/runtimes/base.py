"""The one small interface every tenant runtime implements (docker, process, swarm).

A runtime knows instances by tenant slug inside its namespace (the installation's role prefix, carried
in the ``botfleet.namespace`` label), so two installations or two test runs sharing one engine never
see each other's bots. Every method is idempotent: ensuring a running instance with the same spec hash
does nothing, stopping a stopped one or removing a missing one is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from deploy_worker.spec import RuntimeSpec
from schemas.capacity import BotUsage


class InstanceState(StrEnum):
    """What a runtime reports about one tenant bot."""

    RUNNING = "running"
    RESTARTING = "restarting"  # crashed and being restarted by the runtime itself (backoff)
    STOPPED = "stopped"  # exists, not running (stopped on purpose, or exited)
    MISSING = "missing"


@dataclass(frozen=True)
class InstanceStatus:
    """One tenant bot as the runtime sees it."""

    slug: str
    state: InstanceState
    spec_hash: str | None = None
    instance_id: str | None = None
    image: str | None = None
    restart_count: int = 0
    started_at: datetime | None = None
    exit_code: int | None = None
    detail: str = ""

    @property
    def alive(self) -> bool:
        """Running, or crashed and already being restarted by the runtime."""
        return self.state in (InstanceState.RUNNING, InstanceState.RESTARTING)

    @classmethod
    def missing(cls, slug: str) -> InstanceStatus:
        return cls(slug=slug, state=InstanceState.MISSING)


@dataclass(frozen=True)
class EnsureResult:
    """What :meth:`Runtime.ensure` did: ``changed`` is False when the instance already matched."""

    status: InstanceStatus
    changed: bool


@runtime_checkable
class Runtime(Protocol):
    """Runs tenant bots. Implementations keep blocking work off the event loop."""

    kind: str
    namespace: str

    async def ensure(self, spec: RuntimeSpec, *, recreate: bool = False) -> EnsureResult:
        """Make the tenant's instance run ``spec``: create, start, or recreate when the spec hash
        differs (or ``recreate`` is set); nothing when it already runs this spec."""
        ...

    async def stop(self, slug: str) -> bool:
        """Stop the instance but keep it (a suspended tenant); False if there was none running."""
        ...

    async def remove(self, slug: str) -> bool:
        """Stop and delete the instance and what the runtime keeps of it; False if none existed."""
        ...

    async def status(self, slug: str) -> InstanceStatus:
        """The instance's current state (``MISSING`` when there is none)."""
        ...

    async def logs(self, slug: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines the bot wrote."""
        ...

    async def list_by_label(self, labels: dict[str, str] | None = None) -> list[InstanceStatus]:
        """Every instance of this namespace, optionally only those carrying ``labels``."""
        ...

    async def close(self) -> None:
        """Release the runtime's own resources (clients, helper processes); bots keep running."""
        ...


@runtime_checkable
class MeasuresUsage(Protocol):
    """A runtime that can tell where its live bots run and the memory each holds (every runtime
    of the project; a protocol of its own so test doubles of :class:`Runtime` need not)."""

    async def usage(self) -> list[BotUsage]:
        """Every running bot of this namespace: its host and memory (None where unknown). Reads
        ``/proc`` or the engine off the event loop."""
        ...
