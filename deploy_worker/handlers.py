"""Job kinds mapped onto the converger.

Every kind converges the tenant to the desired state recorded on it when the job runs (the enqueuer
set it in the same transaction), so jobs are level-triggered too: a ``suspend`` that runs after a
newer ``resume`` request still leaves the bot running. ``redeploy`` may carry ``image`` (pin the
tenant to that image) and ``force`` (recreate even when the spec is unchanged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from deploy_worker.provisioning import Converger

log = logging.getLogger(__name__)


class JobHandler:
    """Runs one claimed job and records its failures on the tenant."""

    def __init__(self, *, converger: Converger) -> None:
        self._converger = converger

    async def run(self, job: Mapping[str, Any]) -> str:
        """Execute ``job``; returns the tenant's resulting state (see :meth:`Converger.converge`)."""
        tenant_id = job["tenant_id"]
        if tenant_id is None:
            log.warning("job without a tenant ignored", extra={"kind": job["kind"]})
            return "absent"
        payload = job["payload"] or {}
        if job["kind"] == "redeploy":
            return await self._converger.converge(
                tenant_id, image=payload.get("image"), recreate=bool(payload.get("force"))
            )
        return await self._converger.converge(tenant_id)

    async def failed(
        self, job: Mapping[str, Any], error: str, *, final: bool, permanent: bool
    ) -> None:
        """Called after a failed attempt (``final``: the job is now dead)."""
        if job["tenant_id"] is not None:
            await self._converger.record_failure(
                job["tenant_id"], error, final=final, permanent=permanent
            )
