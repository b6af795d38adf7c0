"""CSV cells that a spreadsheet will not run as formulas (CSV/formula injection).

Every CSV the service writes goes through ``safe_cell`` (one value), ``SafeWriter`` /
``SafeDictWriter`` (the csv module) or ``safe_frame`` (pandas ``to_csv``). A *string*
cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with
a single quote, so Excel, LibreOffice and Google Sheets show it as text. Numbers
(int, float, Decimal, numpy numbers) are left alone: a trend of -0.05 stays a number.

A carriage return inside a string cell becomes a line feed: Python 3.11's csv module does
not quote a field holding a lone ``\r`` when the line terminator is ``\n``, so a reader
would start a new row there (``"x\r=cmd"`` would inject a row beginning ``=cmd``).
"""
from __future__ import annotations

import csv
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged unless it is a string starting with a formula character
    (then prefixed with ``'``) or holding a carriage return (then a line feed)."""
    if not isinstance(value, str):
        return value
    if value.startswith(DANGEROUS):
        value = "'" + value
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def is_number(value: Any) -> bool:
    """True for real numbers (bool excluded), which are written as they are."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


class SafeWriter:
    """``csv.writer`` whose rows have every string cell neutralised."""

    def __init__(self, handle: Any, *args: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(handle, *args, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose header and values have every string cell neutralised."""

    def writeheader(self) -> Any:
        return self.writer.writerow([safe_cell(f) for f in self.fieldnames])

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def safe_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame with string cells of object/string columns neutralised
    (numeric columns untouched); call before ``to_csv``."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = frame.copy()
    for column in out.columns:
        if is_object_dtype(out[column].dtype) or is_string_dtype(out[column].dtype):
            out[column] = out[column].map(safe_cell)
    out.columns = [safe_cell(c) for c in out.columns]
    return out
