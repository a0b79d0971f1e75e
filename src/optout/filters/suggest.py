"""The nearest known name to a mistyped one, for "did you mean ...?" in filter errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# How alike two names must be (difflib's ratio) before one is offered for the other.
CUTOFF = 0.6
OTHER_RELATION_CUTOFF = 0.8


def similarity(typed: str, known: str) -> float:
    return difflib.SequenceMatcher(None, typed, known).ratio()


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to `name`, or None when nothing is close."""
    found = difflib.get_close_matches(name.strip().lower(), sorted(set(known)), n=1, cutoff=CUTOFF)
    return found[0] if found else None


def nearest_field(name: str, known: Iterable[str]) -> str | None:
    """The known dotted field name closest to `name`, compared by the part after the
    relation (`person.titel` finds `person.title`, `domain` finds `company.domain`):
    first among the fields of the relation it names, then among all."""
    typed = name.strip().lower()
    relation, _, tail = typed.rpartition(".")
    fields = sorted(set(known))
    same_relation = [f for f in fields if f.rpartition(".")[0] == relation]
    # Another relation's field must be closer to count: `company.title` finds
    # `person.title`, but `person.shoe` finds nothing.
    for pool, cutoff in ((same_relation, CUTOFF), (fields, OTHER_RELATION_CUTOFF)):
        tails: dict[str, str] = {}
        for candidate in pool:
            tails.setdefault(candidate.rpartition(".")[2], candidate)
        found = difflib.get_close_matches(tail, list(tails), n=1, cutoff=cutoff)
        if found:
            return tails[found[0]]
    return None


def did_you_mean(suggestion: str | None) -> str:
    """'; did you mean X?', or '' without a suggestion."""
    return f"; did you mean {suggestion}?" if suggestion is not None else ""
