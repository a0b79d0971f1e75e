"""A refused enrollment's reason in a RevOps admin's words: apart from the recording of
refusals (`refusals`), so a reader of one decision (`optout explain`'s outlook of an
automatic enrollment) words it without loading that."""

from __future__ import annotations

# What each refusing check is called where a RevOps admin reads the reason.
REASONS = {
    "complained": "sent a spam complaint",
    "opted_out": "opted out",
    "bounced": "hard-bounced",
    "enforced_exclusion": "excluded (applies to every sequence)",
    "exclusion": "excluded",
    "already_enrolled": "already active in this sequence",
    "cooldown": "in re-enrollment cooldown",
    "company_cap": "company cap reached",
    "audience": "not in the audience",
}


def reason_words(check: str, exclusion: str | None) -> str:
    """The reason in words: "opted out", "excluded by 'Current customers'"."""
    words = REASONS.get(check, check.replace("_", " "))
    if exclusion is None:
        return words
    return f"excluded by {exclusion!r}" + (
        " (applies to every sequence)" if check == "enforced_exclusion" else ""
    )
