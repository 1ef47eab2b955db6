"""What a YooKassa notification may claim, and who may send one.

YooKassa signs nothing (there is no signature header); the defences are the sender's address, checked
here against YooKassa's published networks, and asking the API about the payment, which
:class:`fleet.billing.payments.PaymentService` does for every notification.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fleet.billing.errors import NotificationRejected
from fleet.billing.yookassa import valid_payment_id

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EVENTS = frozenset(
    {"payment.succeeded", "payment.canceled", "payment.waiting_for_capture", "refund.succeeded"}
)


@dataclass(frozen=True)
class Notification:
    """The only parts of a notification body we use: which event and which object."""

    event: str
    object_id: str

    @classmethod
    def parse(cls, body: bytes) -> Notification:
        """Parse a body; NotificationRejected(400) saying what is wrong otherwise."""
        try:
            data: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise NotificationRejected(400, "the body is not JSON") from None
        except RecursionError:  # e.g. 100000 '[': the parser gives up; a client error, not a 500
            raise NotificationRejected(400, "the body is nested too deeply") from None
        if not isinstance(data, dict) or data.get("type") != "notification":
            raise NotificationRejected(400, "expected an object with type=notification")
        event, obj = data.get("event"), data.get("object")
        if event not in EVENTS:
            raise NotificationRejected(400, f"unknown event; expected one of {sorted(EVENTS)}")
        if not isinstance(obj, dict) or not valid_payment_id(obj.get("id")):
            raise NotificationRejected(400, "object.id must be a YooKassa object id")
        return cls(event=event, object_id=obj["id"])


def _networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(raw: str | None) -> Address | None:
    """An IP address (IPv4-mapped IPv6 as IPv4), or None if ``raw`` is not one."""
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """Who the client is, when reverse proxies stand in front of us.

    Only when the peer (the TCP connection's other end) is one of the trusted proxies is
    ``X-Forwarded-For`` read, right to left, skipping further trusted proxies; the first address
    that is not a trusted proxy is the client. Anyone else's ``X-Forwarded-For`` is ignored, so a
    client cannot claim an address by sending the header itself. This is the one place that reads
    the header: the API's edge middleware (:mod:`control_plane.middleware`) rewrites the request's
    client with it, and everything after (the webhook's sender check, rate limits, logs) uses that.
    """

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks = _networks(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: Address) -> bool:
        return any(address in net for net in self._networks)

    def client(self, *, peer: str | None, forwarded_for: str | None = None) -> str | None:
        """The client's address, or None if it cannot be told (no peer, a malformed hop)."""
        address = parse_address(peer)
        if address is None:
            return None
        if forwarded_for and address in self:
            for hop in reversed(forwarded_for.split(",")):
                hop_address = parse_address(hop)
                if hop_address is None:
                    return None
                address = hop_address
                if address not in self:
                    break
        return str(address)


class SenderPolicy:
    """Decides whether a request comes from YooKassa.

    The API's edge middleware has already replaced the peer by the client a trusted proxy names
    (:class:`TrustedProxies`), so the webhook passes only the peer. ``forwarded_for`` stays for
    callers without that middleware: it is read the same way, and only from ``trusted_proxies``.
    """

    def __init__(self, *, allowed: Iterable[str], trusted_proxies: Iterable[str] = ()) -> None:
        self._allowed = _networks(allowed)
        self._proxies = TrustedProxies(trusted_proxies)

    def sender(self, *, peer: str | None, forwarded_for: str | None = None) -> str | None:
        """The address that sent the request, or None if it cannot be told."""
        return self._proxies.client(peer=peer, forwarded_for=forwarded_for)

    def is_allowed(self, address: str | None) -> bool:
        parsed = parse_address(address)
        return parsed is not None and any(parsed in net for net in self._allowed)

    def check(self, *, peer: str | None, forwarded_for: str | None = None) -> str:
        """The sender's address, or NotificationRejected(403)."""
        address = self.sender(peer=peer, forwarded_for=forwarded_for)
        if not self.is_allowed(address):
            raise NotificationRejected(403, "the sender is not in YooKassa's networks")
        assert address is not None
        return address
