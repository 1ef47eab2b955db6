"""YooKassa API v3 stand-in: payments, a checkout page, notifications and a control API.

Public API::

    from sandbox.yookassa import YooKassaStandIn, YooKassaSandbox, NotificationSenderConfig

    async with YooKassaStandIn.start(port=0, webhook_url=...) as yk:
        yk.api_url        # give to yookassa.Configuration.configure(..., api_url=yk.api_url)
"""

from sandbox.yookassa.client import YooKassaSandbox
from sandbox.yookassa.notifier import NotificationSenderConfig
from sandbox.yookassa.server import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaStandIn

__all__ = [
    "DEFAULT_SECRET_KEY",
    "DEFAULT_SHOP_ID",
    "NotificationSenderConfig",
    "YooKassaSandbox",
    "YooKassaStandIn",
]
