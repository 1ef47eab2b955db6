"""Job kinds mapped onto the converger.

Every kind converges the tenant to the desired state recorded on it when the job runs (the enqueuer
set it in the same transaction), so jobs are level-triggered too: a ``suspend`` that runs after a
newer ``resume`` request still leaves the bot running. ``redeploy`` may carry ``image`` (pin the
tenant to that image) and ``force`` (recreate even when the spec is unchanged).

A job is checked before anything is done for it: a kind this worker does not handle (a newer
producer, a row written by hand) or a payload that fails validation raises
:class:`~deploy_worker.worker.MalformedJob`, which parks the job as dead at once, since retrying the
same row cannot fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic import ValidationError as PydanticValidationError

from deploy_worker.provisioning import Converger
from deploy_worker.worker import MalformedJob
from fleet.jobs import JOB_KINDS

log = logging.getLogger(__name__)


class JobPayload(BaseModel):
    """What the converger reads from a job's payload; other keys (``reason``, ``source``,
    ``export``) are notes for operators and pass through."""

    model_config = ConfigDict(extra="allow")

    image: str | None = Field(default=None, min_length=1, max_length=500)
    force: StrictBool = False


def parse_job(job: Mapping[str, Any]) -> JobPayload:
    """The job's payload, validated; :class:`MalformedJob` when the job cannot run as written."""
    kind = job["kind"]
    if kind not in JOB_KINDS:
        raise MalformedJob(f"unknown job kind {kind!r}; this worker runs {', '.join(JOB_KINDS)}")
    payload = job["payload"]
    if payload is None:
        return JobPayload()
    if not isinstance(payload, Mapping):
        raise MalformedJob(
            f"{kind} job payload must be a JSON object, not {type(payload).__name__}"
        )
    try:
        return JobPayload.model_validate(dict(payload))
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise MalformedJob(f"{kind} job payload is invalid: {problems}") from None


class JobHandler:
    """Runs one claimed job and records its failures on the tenant."""

    def __init__(self, *, converger: Converger) -> None:
        self._converger = converger

    async def run(self, job: Mapping[str, Any]) -> str:
        """Execute ``job``; returns the tenant's resulting state (see :meth:`Converger.converge`)."""
        payload = parse_job(job)
        tenant_id = job["tenant_id"]
        if tenant_id is None:
            log.warning("job without a tenant ignored", extra={"kind": job["kind"]})
            return "absent"
        if job["kind"] == "redeploy":
            return await self._converger.converge(
                tenant_id, image=payload.image, recreate=payload.force
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
