"""Phone numbers are E.164 or refused."""
from __future__ import annotations

import pytest

from smsgw.phones import InvalidPhone, mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+254700000001", "KE", "+254700000001"),
        ("0712 345 678", "KE", "+254712345678"),
        ("00254712345678", "SN", "+254712345678"),
        ("77 000 00 01", "SN", "+221770000001"),
    ],
)
def test_numbers_are_normalised(raw, region, expected) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "abc", "+254 7000", "12", "+999123456789"])
def test_invalid_numbers_are_refused(raw) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_masked_numbers_keep_little() -> None:
    assert mask_phone("+254712345678") == "+254*******78"
