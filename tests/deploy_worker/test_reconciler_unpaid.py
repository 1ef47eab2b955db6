"""An unpaid purchase is not drift (issue 13).

A purchase creates its tenant unpaid (``status=new``, ``desired_state=stopped``, no job, no
instance) so the payment can name it. The reconciler used to see "new but should be stopped" and
queue a ``suspend``: the owner who took longer than one pass to type their card details ended up
with a suspended tenant and a ``tenant.suspended`` notice before their payment arrived. Every other
status keeps the decisions it had.
"""

from __future__ import annotations

import pytest

from deploy_worker.reconciler import decide
from deploy_worker.runtimes.base import InstanceState, InstanceStatus

SLUG = "unpaid_shop"
RUNNING = InstanceStatus(slug=SLUG, state=InstanceState.RUNNING, spec_hash="h1")
RESTARTING = InstanceStatus(slug=SLUG, state=InstanceState.RESTARTING, spec_hash="h1")
STOPPED = InstanceStatus(slug=SLUG, state=InstanceState.STOPPED, spec_hash="h1")
MISSING = InstanceStatus.missing(SLUG)


def _kind(status: str, desired: str, instance: InstanceStatus | None) -> str | None:
    decision = decide(status, desired, instance, expected_hash="h1")
    return None if decision is None else decision.kind


def test_unpaid_purchase_without_an_instance_is_left_alone() -> None:
    assert decide("new", "stopped", None, expected_hash=None) is None
    assert _kind("new", "stopped", None) is None


def test_unpaid_purchase_whose_instance_somehow_runs_is_still_stopped() -> None:
    # A running bot for a tenant nobody paid for is real drift: stop it.
    assert _kind("new", "stopped", RUNNING) == "suspend"
    assert _kind("new", "stopped", RESTARTING) == "suspend"


@pytest.mark.parametrize(
    ("status", "desired", "instance", "expected"),
    [
        # desired stopped: a tenant that was (being) set up and should not run is suspended
        ("provisioning", "stopped", None, "suspend"),
        ("active", "stopped", None, "suspend"),
        ("degraded", "stopped", None, "suspend"),
        ("active", "stopped", RUNNING, "suspend"),
        ("active", "stopped", STOPPED, "suspend"),
        ("suspended", "stopped", STOPPED, None),
        ("suspended", "stopped", None, None),
        ("suspended", "stopped", RUNNING, "suspend"),
        # errors wait for an operator whatever else is true
        ("error", "stopped", None, None),
        ("error", "running", None, None),
        ("error", "stopped", RUNNING, None),
        # deletion
        ("deleting", "deleted", RUNNING, "deprovision"),
        ("active", "deleted", None, "deprovision"),
        ("deleting", "stopped", None, "deprovision"),
        # desired running: a paid purchase whose job was lost is provisioned
        ("new", "running", None, "provision"),
        ("provisioning", "running", None, "provision"),
        ("suspended", "running", STOPPED, "resume"),
        ("active", "running", RUNNING, None),
        ("active", "running", None, "redeploy"),
        ("active", "running", MISSING, "redeploy"),
        ("active", "running", STOPPED, "redeploy"),
        ("degraded", "running", RUNNING, None),
    ],
)
def test_every_other_status_decides_as_before(
    status: str, desired: str, instance: InstanceStatus | None, expected: str | None
) -> None:
    assert _kind(status, desired, instance) == expected
