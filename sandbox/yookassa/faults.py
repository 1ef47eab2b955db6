"""Fault injection for the stand-in's API: make the next calls fail with a status or hang."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sandbox.yookassa.errors import YooKassaError

OPERATIONS = frozenset({"create", "get", "list", "capture", "cancel", "refund", "get_refund", "*"})


@dataclass
class Fault:
    """``count`` calls of ``operation`` wait ``delay`` seconds, then fail with ``status`` if set."""

    operation: str
    status: int | None
    count: int
    delay: float = 0.0

    def to_json(self) -> dict[str, object]:
        """JSON form for the control API."""
        return {
            "operation": self.operation,
            "status": self.status,
            "count": self.count,
            "delay": self.delay,
        }


class FaultPlan:
    """Queued faults, consumed in order by matching operations."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault."""
        self.faults.append(fault)

    def clear(self) -> None:
        """Drop every queued fault."""
        self.faults.clear()

    async def apply(self, operation: str) -> None:
        """Consume a matching fault: sleep, then raise the injected error if it has a status."""
        fault = next((f for f in self.faults if f.operation in (operation, "*")), None)
        if fault is None:
            return
        fault.count -= 1
        if fault.count <= 0:
            self.faults.remove(fault)
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.status is not None:
            description = "Internal server error" if fault.status >= 500 else "Injected fault"
            raise YooKassaError(fault.status, description)
