"""Where in a filter's tree a problem is, twice: as a location a program reads
(`filter.all[0].any[2]`, the path of the JSON form) and in words a person reads ("the
third condition in the first group").

A location is `filter`, then for each step down `.all[i]`, `.any[i]` (the i-th item of
an `and` / `or` list, from 0) or `.not`.
"""

from __future__ import annotations

import re

from optout.errors import InvalidFilter

__all__ = ["ROOT", "child", "filter_error", "negated", "ordinal", "place_words"]

ROOT = "filter"
_STEP = re.compile(r"\.(?:all|any)\[(\d+)\]")
_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)


def child(location: str, kind: str, index: int) -> str:
    """The location of item `index` of the `kind` ("all" or "any") list at `location`."""
    return f"{location}.{kind}[{index}]"


def negated(location: str) -> str:
    """The location of what the `not` at `location` negates."""
    return f"{location}.not"


def ordinal(number: int) -> str:
    """1 -> "first", 12 -> "12th", 22 -> "22nd"."""
    if 1 <= number <= len(_ORDINALS):
        return _ORDINALS[number - 1]
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def place_words(location: str) -> str:
    """`filter.all[0]` as "the first condition", `filter.all[2].any[0]` as "the first
    condition in the third group"; the root as "the filter"."""
    positions = [int(index) + 1 for index in _STEP.findall(location)]
    if not positions:
        return "the filter"
    words = f"the {ordinal(positions[-1])} condition"
    for position in reversed(positions[:-1]):
        words += f" in the {ordinal(position)} group"
    return words


def filter_error(reason: str, location: str, *, shown: str = "") -> InvalidFilter:
    """A problem at `location` of a filter's tree: the message places it in words (with
    the condition as `shown`, when there is one), `location` keeps it for programs."""
    where = place_words(location)
    if shown:
        where = f"{where}, “{shown}”" if where != "the filter" else f"the condition “{shown}”"
    return InvalidFilter(reason, where=where, location=location)
