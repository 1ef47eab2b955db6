"""Operator and control-plane requests that change what a tenant should be, each with its job.

Every request sets the tenant's desired state and queues the job that converges it in ONE
transaction (with an audit entry), so a crash never leaves a desired state without its job or a job
without its desired state. The deploy worker's handlers converge to the desired state recorded on the
tenant when they run, so jobs queued in any order still end in the state asked for last.
"""

from __future__ import annotations

from typing import Any, Literal

import asyncpg

from fleet import jobs
from fleet.errors import NotFoundError, ValidationError
from fleet.repositories import audit
from fleet.repositories.tenants import TenantRepository

Action = Literal["deploy", "suspend", "resume", "redeploy", "deprovision"]

# action -> (desired state, job kind)
_ACTIONS: dict[str, tuple[str | None, str]] = {
    "deploy": ("running", "provision"),
    "resume": ("running", "resume"),
    "suspend": ("stopped", "suspend"),
    "redeploy": (None, "redeploy"),
    "deprovision": ("deleted", "deprovision"),
}


class TenantLifecycle:
    """Queues lifecycle changes of tenants (deploy, suspend, resume, redeploy, deprovision)."""

    def __init__(self, *, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def request(
        self,
        slug: str,
        action: Action,
        *,
        actor: str,
        request_id: str | None = None,
        payload: dict[str, Any] | None = None,
        max_attempts: int = 8,
    ) -> asyncpg.Record:
        """Apply ``action`` to tenant ``slug``; returns the queued job."""
        if action not in _ACTIONS:
            raise ValidationError("action", f"must be one of {', '.join(_ACTIONS)}")
        desired, kind = _ACTIONS[action]
        async with self._pool.acquire() as conn, conn.transaction():
            repo = TenantRepository(conn)
            found = await repo.get(slug)
            if found is None:
                raise NotFoundError(
                    f"tenant {slug!r} does not exist; list tenants with `botfleet tenants list`"
                )
            tenant = await repo.lock(found.id)
            assert tenant is not None
            changes: dict[str, Any] = {}
            if desired is not None and tenant.desired_state != desired:
                changes["desired_state"] = desired
            if action == "deploy" and tenant.status in ("new", "error"):
                changes.update(status="provisioning", status_reason=None)
            if action == "deprovision":
                changes["status"] = "deleting"
            if changes:
                await repo.update(tenant.id, **changes)
            job = await jobs.enqueue(
                conn,
                kind=kind,
                tenant_id=tenant.id,
                payload=payload,
                request_id=request_id,
                max_attempts=max_attempts,
            )
            await audit.record(
                conn,
                actor=actor,
                action=f"tenant.{action}",
                target=slug,
                details={"job_id": job["id"], **(payload or {})},
                request_id=request_id,
            )
        return job
