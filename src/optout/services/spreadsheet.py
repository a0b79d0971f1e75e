"""Cells of every CSV file we write: a value a spreadsheet would run as a formula
(`=HYPERLINK(...)`, `+`, `-`, `@`, a leading tab or CR) is written with a leading quote,
so opening an export or an import's error report shows text and runs nothing."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A value as a spreadsheet shows it, never as a formula it would run."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
