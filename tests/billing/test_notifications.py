"""Who may notify us, and what a notification body may say."""

from __future__ import annotations

import pytest
from yookassa.domain.common.security_helper import SecurityHelper

from fleet.billing.errors import NotificationRejected
from fleet.billing.notifications import Notification, SenderPolicy
from fleet.settings import load_settings


def test_default_networks_are_the_sdks() -> None:
    assert load_settings().yookassa_allowed_networks == SecurityHelper.YOOKASSA_NETWORKS


def test_networks_from_env_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTFLEET_YOOKASSA_ALLOWED_NETWORKS", "127.0.0.77, 10.0.0.0/8")
    assert load_settings().yookassa_allowed_networks == ["127.0.0.77", "10.0.0.0/8"]


def test_sender_policy_direct_and_behind_a_trusted_proxy() -> None:
    policy = SenderPolicy(allowed=SecurityHelper.YOOKASSA_NETWORKS, trusted_proxies=["10.0.0.5"])
    assert policy.check(peer="185.71.76.10") == "185.71.76.10"
    assert policy.check(peer="::ffff:77.75.156.11") == "77.75.156.11"
    assert policy.check(peer="2a02:5180:0:1509::1")
    # Through our proxy, the address it saw is the sender; one a client wrote itself is not.
    assert policy.check(peer="10.0.0.5", forwarded_for="1.2.3.4, 185.71.77.3") == "185.71.77.3"
    for peer, forwarded in [
        ("10.0.0.5", "185.71.77.3, 1.2.3.4"),
        ("1.2.3.4", "185.71.77.3"),  # not our proxy: the header is ignored
        ("10.0.0.5", "garbage"),
        (None, None),
    ]:
        with pytest.raises(NotificationRejected) as refused:
            policy.check(peer=peer, forwarded_for=forwarded)
        assert refused.value.status == 403


def test_notification_parsing() -> None:
    note = Notification.parse(
        b'{"type":"notification","event":"payment.succeeded","object":{"id":"2b0a-1"}}'
    )
    assert note == Notification(event="payment.succeeded", object_id="2b0a-1")
    with pytest.raises(NotificationRejected):
        Notification.parse(
            b'{"type":"notification","event":"payment.succeeded","object":{"id":"../../x"}}'
        )
