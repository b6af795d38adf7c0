"""Phone numbers in E.164, normalised with ``phonenumbers`` wherever they enter."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """A phone number that is not a valid number; the message says which."""


def normalize_phone(raw: str, region: str = "KE") -> str:
    """Return ``raw`` as an E.164 string (``+254700000001``) or raise InvalidPhone.

    ``region`` reads national numbers (``0712 345678`` in Kenya); numbers written with
    ``+`` or ``00`` keep their own country.
    """
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"not a phone number: {raw!r}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str) -> str:
    """A phone number safe for logs: country code and last two digits only."""
    if len(phone) <= 6:
        return "***"
    return phone[:4] + "*" * (len(phone) - 6) + phone[-2:]


def country_of_prefix(prefix: str) -> str | None:
    """The region of a ``+CCC`` prefix (country codes never prefix one another)."""
    digits = prefix.lstrip("+")
    for size in (1, 2, 3):
        if len(digits) >= size and digits[:size].isdigit():
            region = phonenumbers.region_code_for_country_code(int(digits[:size]))
            if region != "ZZ":
                return region
    return None
