"""The billing error tree (all are :class:`fleet.errors.BotfleetError`).

- :class:`PaymentProviderError` — YooKassa could not be used; subclasses say how:
  - :class:`ProviderUnavailable` — timeouts, network errors, 5xx/429 after every retry: try later.
  - :class:`ProviderRejected` — a 4xx answer: YooKassa refused the request (``code``, ``parameter``).
- :class:`NotificationRejected` — a webhook request that must not be processed (wrong sender, bad body).
"""

from __future__ import annotations

from fleet.errors import BotfleetError


class PaymentProviderError(BotfleetError):
    """YooKassa could not be used."""


class ProviderUnavailable(PaymentProviderError):
    """YooKassa did not answer usefully (timeout, network error, 5xx or 429) after every retry."""


class ProviderRejected(PaymentProviderError):
    """YooKassa answered 4xx: the request itself is wrong, so retrying cannot help."""

    def __init__(
        self, status: int, *, code: str, description: str, parameter: str | None = None
    ) -> None:
        where = f" (parameter {parameter})" if parameter else ""
        super().__init__(f"YooKassa refused the request: {status} {code}: {description}{where}")
        self.status = status
        self.code = code
        self.description = description
        self.parameter = parameter


class NotificationRejected(BotfleetError):
    """A webhook request that must not be processed; ``status`` is the HTTP answer to give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
