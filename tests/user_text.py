"""What text a user reads must not hold: the specification's rule ids (R1..R99) and the
code's internal names of checks and event rules. Shared by the page checks of the
browser tests and the scan of CLI help, API errors and the demo tour."""

from __future__ import annotations

import re

from optout.eligibility.precedence import CHECK_LABELS

# A rule id stands between word boundaries that are not part of a token: "-R2-" inside a
# signed URL token (base64url: letters, digits, "-" and "_") is not a rule id.
RULE_ID = re.compile(r"(?<![\w-])R\d{1,2}(?![\w-])")

# Internal names that read as code: the checks' and the events' rule names with an
# underscore (a plain word such as "cooldown" is a fine word on a page).
INTERNAL_NAMES = sorted(
    {name for name in CHECK_LABELS if "_" in name}
    | {"opt_out", "exclusion_monitor", "delivery_failed", "manual_unenroll", "bulk_unenroll"}
)
_INTERNAL = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, INTERNAL_NAMES)) + r")(?![\w-])")


def internal_words(text: str) -> list[str]:
    """Every rule id and internal name in `text`, in order, each with some context."""
    found = []
    for pattern in (RULE_ID, _INTERNAL):
        for match in pattern.finditer(text):
            start, end = max(match.start() - 30, 0), match.end() + 30
            found.append(f"{match.group()!r} in …{text[start:end]!r}…")
    return found
