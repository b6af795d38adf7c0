"""Phone numbers in E.164, normalised with ``phonenumbers`` wherever they enter."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType


class InvalidPhone(ValueError):
    """A phone number that is not a valid number; the message says which."""


# The number types an SMS can reach and we may spend money on: never premium-rate,
# toll-free, shared-cost or fixed lines (a reply there is cost or pumping, not a farmer).
MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


def normalize_phone(raw: str, region: str = "KE") -> str:
    """Return ``raw`` as an E.164 string (``+254700000001``) or raise InvalidPhone.

    ``region`` reads national numbers (``0712 345678`` in Kenya); numbers written with
    ``+`` or ``00`` keep their own country. Spaces, dashes, dots and parentheses are
    accepted; any letter is refused.
    """
    return _e164(_parse(raw, region))


def is_mobile(phone: str) -> bool:
    """True when ``phone`` is exactly the E.164 form of a valid mobile number.

    The only numbers we send to: never premium-rate, toll-free or fixed lines.
    """
    try:
        number = _parse(phone, "ZZ")  # no region: only a full international number
    except InvalidPhone:
        return False
    return _e164(number) == phone and phonenumbers.number_type(number) in MOBILE_TYPES


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber:
    """A valid number from ``raw``, or InvalidPhone."""
    text = (raw or "").strip()
    # phonenumbers reads letters as keypad digits ("7OO" -> "766"), which turns a typo
    # or a forged sender into another farmer's number: refuse them before parsing.
    if any(ch.isalpha() for ch in text):
        raise InvalidPhone(f"letters in a phone number: {raw!r}")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"not a phone number: {raw!r}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"not a valid phone number: {raw!r}")
    return number


def _e164(number: phonenumbers.PhoneNumber) -> str:
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


# The admin phone simulator's numbers: 100 per country (``services.simulation``). Whatever
# is queued for them is simulated, never sent (``messaging.outbox``).
SIMULATOR_BLOCKS = {"+254": "+2547099999", "+221": "+2217099999"}
SIMULATOR_NUMBER = re.compile(r"^\+(2547099999|2217099999)\d{2}$")


def is_simulator_number(phone: str) -> bool:
    """True for a number of the simulator's reserved range."""
    return bool(SIMULATOR_NUMBER.match(phone))
