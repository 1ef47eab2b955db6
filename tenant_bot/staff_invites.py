"""One-time invitations that link a staff member to a Telegram account (for the /staff desk).

The owner's staff card makes a link ``t.me/<bot>?start=j<token>``; whoever opens it first within
:data:`INVITE_TTL` becomes that staff member's Telegram account, and the link is spent. Tokens live
in Redis under the tenant's prefix: taken with GET and DEL in one MULTI/EXEC, so two people opening
the same link at once cannot both be linked (GETDEL is not among the tenant's allowed commands).
"""

from __future__ import annotations

import re
import secrets

from redis.asyncio import Redis

INVITE_TTL = 24 * 3600
PAYLOAD = re.compile(r"^j([0-9a-f]{16})$")


class StaffInvites:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, token: str) -> str:
        return f"{self.prefix}staff-invite:{token}"

    async def create(self, staff_id: int) -> str:
        """A new invitation for ``staff_id``; returns the ``/start`` payload."""
        token = secrets.token_hex(8)
        await self.redis.set(self._key(token), staff_id, ex=INVITE_TTL)
        return f"j{token}"

    async def take(self, payload: str) -> int | None:
        """The staff id of an unspent, unexpired invitation (spending it), else None."""
        match = PAYLOAD.match(payload)
        if match is None:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self._key(match.group(1)))
            pipe.delete(self._key(match.group(1)))
            value, deleted = await pipe.execute()
        return int(value) if value is not None and deleted else None
