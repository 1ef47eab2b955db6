"""A short-lived in-process cache of the catalogue (settings, services, staff) for the hot paths.

Every customer tap needs the business settings (time zone) and names of services and staff; reading
them from PostgreSQL each time would double the work of a tap. One process serves a tenant's updates,
and the owner's edits go through this same process, which calls :meth:`CatalogueCache.invalidate` after
each; the TTL bounds staleness for edits made elsewhere (the CLI, a second process).
"""

from __future__ import annotations

import time
from typing import Any

from tenant_bot.booking.errors import NotFound
from tenant_bot.booking.models import Service, Settings, Staff

TTL_SECONDS = 30.0


class CatalogueCache:
    """Cached reads over the booking core's ``CatalogueService``."""

    def __init__(self, catalogue: Any, *, ttl: float = TTL_SECONDS) -> None:
        self.catalogue = catalogue
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}

    def invalidate(self) -> None:
        """Forget everything (after any owner edit)."""
        self._entries.clear()

    async def _get(self, key: str, load: Any) -> Any:
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        value = await load()
        self._entries[key] = (now, value)
        return value

    async def settings(self) -> Settings:
        return await self._get("settings", self.catalogue.get_settings)  # type: ignore[no-any-return]

    async def services(self) -> list[Service]:
        """Active services, in the owner's order."""
        return await self._get(  # type: ignore[no-any-return]
            "services", lambda: self.catalogue.list_services(active_only=True)
        )

    async def service(self, service_id: int) -> Service:
        """An active service; raises :class:`NotFound` for a missing or switched-off one."""
        for service in await self.services():
            if service.id == service_id:
                return service
        raise NotFound("no such service", entity="service", id=service_id)

    async def staff_for(self, service_id: int) -> list[Staff]:
        """Active staff providing the service."""
        return await self._get(  # type: ignore[no-any-return]
            f"staff:{service_id}",
            lambda: self.catalogue.list_staff(service_id=service_id, active_only=True),
        )

    async def all_staff(self) -> list[Staff]:
        return await self._get(  # type: ignore[no-any-return]
            "staff", lambda: self.catalogue.list_staff(active_only=False)
        )

    async def staff_name(self, staff_id: int) -> str:
        for member in await self.all_staff():
            if member.id == staff_id:
                return member.name
        raise NotFound("no such staff member", entity="staff", id=staff_id)
