"""Operators' passwords and second factor: the policy every way of setting one obeys,
and TOTP codes (RFC 6238, as authenticator apps make them).

The policy is a minimum length plus zxcvbn's estimate, which knows the common password
lists, names, keyboard walks, repeats and dates and ships them in the package (no
network). A password it scores below 3 ("safely unguessable: moderate protection from
offline attacks") is refused with its reason. The parts of the account's email count as
known words.
"""
from __future__ import annotations

import datetime as dt
import re

import pyotp
from zxcvbn import zxcvbn

MIN_LENGTH = 10
# zxcvbn only reads this much; longer passwords are long enough.
CHECKED_LENGTH = 100
MIN_SCORE = 3
ISSUER = "smsgw"


MAX_LENGTH = 512
# What each problem means, in English for the command line (the admin translates its own).
PROBLEMS = {
    "short": f"the password must have at least {MIN_LENGTH} characters",
    "long": f"the password must have at most {MAX_LENGTH} characters",
    "guessable": "the password is too easy to guess (a common password, a pattern or a name);"
                 " use three or four unrelated words",
}


def password_problem(password: str, email: str = "") -> str | None:
    """Why ``password`` is refused, as a key of ``PROBLEMS``, or None when it is good."""
    if len(password) < MIN_LENGTH:
        return "short"
    if len(password) > MAX_LENGTH:
        return "long"
    words = [part for part in re.split(r"[^a-z0-9]+", email.lower()) if len(part) > 2]
    result = zxcvbn(password[:CHECKED_LENGTH], user_inputs=[*words, "smsgw", "admin", "soko"])
    if result["score"] < MIN_SCORE:
        return "guessable"
    return None


def new_totp_secret() -> str:
    """A fresh random base32 secret for an authenticator app."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// address an authenticator app reads (typed or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, last_step: int | None, now: dt.datetime | None = None) -> int | None:
    """The time step a 6-digit ``code`` belongs to, or None when it is wrong or used.

    One step either side of now is accepted (phones' clocks drift); a step at or before
    ``last_step`` is refused, so a code seen over someone's shoulder cannot be replayed.
    """
    code = re.sub(r"\s", "", code)
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    moment = now or dt.datetime.now(dt.UTC)
    current = totp.timecode(moment)
    for step in (current - 1, current, current + 1):
        if (last_step is None or step > last_step) and pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
