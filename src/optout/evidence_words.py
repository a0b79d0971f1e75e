"""A check's evidence in words, for the explain page and `optout explain` alike: the
conditions that matched by the fields' labels with the value each saw, the company that
matched, an exclusion's settings, then the rest. Pure: no I/O, no web code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from optout.eligibility.model import Outcome
from optout.filters.words import readable

__all__ = ["condition_lines", "evidence_lines", "value_words"]

_CODE_WORD = re.compile(r"[a-z]+(?:_[a-z]+)+")
# Kept apart from "the rest": said as the exclusion's settings, or not at all.
_SETTINGS = ("level", "exclude_from_sequences", "unenroll_existing_on_save", "exclusion")


def value_words(value: Any) -> str:
    """A value of the evidence as a person reads it."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(value_words(v) for v in value) + ")"
    if isinstance(value, str) and _CODE_WORD.fullmatch(value):
        return value.replace("_", " ")  # a value as the code names it: `unsubscribe_link`
    return str(value).split(".", 1)[0] if _looks_like_moment(value) else str(value)


def _looks_like_moment(value: Any) -> bool:
    text = str(value)
    return len(text) > 19 and text[4] == "-" and text[10] in " T" and text[19] == "."


def condition_lines(evidence: Mapping[str, Any]) -> list[str]:
    """Each matched condition in words with the value it saw: `Company domain is one of
    (acme.com, initech.com) ← acme.com`."""
    return [
        f"{readable(c['condition'])} ← {value_words(c.get('actual'))}"
        for c in evidence.get("conditions", [])
    ]


def evidence_lines(outcome: Outcome) -> list[str]:
    """The evidence of one outcome, a line each: matched conditions with the actual
    values, the company that matched, an exclusion's settings, then the rest."""
    evidence: Mapping[str, Any] = outcome.evidence
    lines = condition_lines(evidence)
    if "company" in evidence and outcome.exclusion_id is not None:
        via = " (a linked company)" if evidence.get("linked_company") else ""
        lines.append(f"matched company: {evidence['company']}{via}")
    if "exclude_from_sequences" in evidence:
        lines.append(
            f"{evidence.get('level', '?')} level · exclude from sequences "
            f"{'on' if evidence['exclude_from_sequences'] else 'off'} · unenroll on save "
            f"{'on' if evidence.get('unenroll_existing_on_save') else 'off'}"
        )
    skip = {"conditions", "linked_company", *_SETTINGS}
    if outcome.exclusion_id is not None:
        skip.add("company")
    rest = [
        f"{k.replace('_', ' ')}: {value_words(v)}" for k, v in evidence.items() if k not in skip
    ]
    if rest:
        lines.append(", ".join(rest))
    return lines
