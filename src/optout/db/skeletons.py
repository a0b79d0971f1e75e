"""The skeleton of a plain ASCII domain (UTS #39, see `optout.filters.confusables`) as a
SQL expression, so indexes on it find the look-alikes of a rule's domains without reading
every domain of the workspace.

`ASCII_REPLACEMENTS` is what `confusables.ascii_replacements()` derives from the vendored
Unicode data; a test holds the two together, and a new Unicode version that changed them
would need a migration that rebuilds the indexes.
"""

from __future__ import annotations

ASCII_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("`", "'"),
    ('"', "''"),
    ("|", "l"),
    ("1", "l"),
    ("I", "l"),
    ("0", "O"),
    ("%", "º/₀"),
    ("m", "rn"),
)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def skeleton_sql(column: str) -> str:
    """The skeleton of the lowercase ASCII domain in `column`, as the indexes have it."""
    expression = f"lower({column})"
    for source, target in ASCII_REPLACEMENTS:
        expression = f"replace({expression}, {_quoted(source)}, {_quoted(target)})"
    return expression
