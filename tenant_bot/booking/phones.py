"""Phone numbers: whatever a customer types, normalised to E.164 or rejected with a clear error."""

from __future__ import annotations

import phonenumbers

from tenant_bot.booking.errors import InvalidPhone

DEFAULT_REGION = "RU"


def normalize_phone(raw: str, *, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` as E.164 (``+79161234567``); numbers without ``+`` are read in ``region``.

    Russian habits are understood: ``8 (916) 123-45-67`` is ``+79161234567``. Raises
    :class:`InvalidPhone` when the text is not a valid number.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("phone", "is empty; send a number like +7 916 123-45-67")
    if len(text) > 40:
        raise InvalidPhone("phone", "is too long; send a number like +7 916 123-45-67")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("phone", f"{text!r} is not a phone number", raw=text) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("phone", f"{text!r} is not a valid phone number", raw=text)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str | None) -> str:
    """A log-safe form keeping the country code and the last two digits (``+7*******67``)."""
    if not e164:
        return ""
    return e164[:2] + "*" * max(len(e164) - 4, 0) + e164[-2:]
