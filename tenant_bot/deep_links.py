"""Booking links: ``t.me/<bot>?start=<payload>`` for the business, a service or a staff member.

A payload is ``book`` (the list of services), ``s<id>`` (a service) or ``f<id>`` (a staff member):
Telegram allows ``A-Z a-z 0-9 _ -`` and 64 characters, and ids are what the bot's own buttons carry
anyway, so nothing secret is in a link. A payload that does not parse, or names a service or staff
member that is gone or switched off, is no error to the customer: they get the normal welcome.

The QR code is a PNG drawn by ``segno`` (pure Python), imported only when an owner asks for one
and drawn in a worker thread, so the idle bot pays nothing for it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

PAYLOAD = re.compile(r"^(?:(book)|([sf])([1-9][0-9]{0,11}))$")
QR_SCALE = 16  # pixels per module: about 5 cm wide at 300 dpi for a short link, sharp when printed


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a booking link opens: ``kind`` ``b`` (services), ``s`` or ``f`` with ``item_id``."""

    kind: str
    item_id: int = 0

    @property
    def payload(self) -> str:
        return "book" if self.kind == "b" else f"{self.kind}{self.item_id}"


def parse(payload: str | None) -> LinkTarget | None:
    """The target of a ``/start`` payload, or None for anything the bot never made."""
    found = PAYLOAD.match(payload or "")
    if found is None:
        return None
    if found.group(1):
        return LinkTarget("b")
    return LinkTarget(found.group(2), int(found.group(3)))


def link(bot_username: str, target: LinkTarget) -> str:
    return f"https://t.me/{bot_username}?start={target.payload}"


def qr_png(url: str) -> bytes:
    """A printable QR code of ``url`` (error correction M, the standard quiet zone). CPU work:
    call it in a worker thread."""
    import segno  # only owners printing a code pay for it

    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=QR_SCALE, border=4)
    return out.getvalue()
