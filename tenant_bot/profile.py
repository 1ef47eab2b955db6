"""First start: the business profile starts from what the platform knows (name, time zone, locale).

The contract carries the display name, time zone and locale the owner gave when buying; the tenant's
own settings row is created with neutral defaults by the migrations. Until the owner has named the
business, the bot copies these in, so /start greets with the right name and slots use the right zone.
Afterwards the owner's own edits always win.
"""

from __future__ import annotations

import logging

from schemas.runtime import TenantRuntime
from tenant_bot.booking import BookingCore

log = logging.getLogger(__name__)


async def seed_profile(core: BookingCore, runtime: TenantRuntime) -> bool:
    """Copy the contract's name, time zone and locale into an unnamed profile; True if it did."""
    settings = await core.catalogue.get_settings()
    if settings.business_name or not runtime.display_name:
        return False
    await core.catalogue.update_settings(
        business_name=runtime.display_name[:200],
        time_zone=runtime.timezone,
        default_locale=runtime.locale,
    )
    log.info("business profile seeded from the runtime contract")
    return True
