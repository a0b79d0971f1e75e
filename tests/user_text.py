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


# Words a RevOps admin does not use, in what pages show: a filter field written as code
# (`person.last_activity_any_at`, `company.fields.tier`) where its label belongs, and the
# phrases of libraries and internals that leaked into messages before.
def _field_paths() -> re.Pattern[str]:
    from optout.filters.fields import FIELDS

    prefixes = "person\\.opportunity|person|company|opportunity"
    names = sorted(FIELDS, key=len, reverse=True)
    alternatives = [re.escape(name) for name in names] + [rf"(?:{prefixes})\.fields\.\w+"]
    return re.compile(r"(?<![\w.@/-])(" + "|".join(alternatives) + r")(?![\w-]|\.\w)")


RAW_FIELD_PATH = _field_paths()
# A merge tag of an email's text (`{{ person.first_name }}`) is what an admin types into a
# step: it is shown as written.
_MERGE_TAG = re.compile(r"\{\{.*?\}\}", re.DOTALL)
# What the admin typed, quoted back by a message ("expected a value after
# 'person.email ='") is theirs: a field path there is how they wrote it.
_QUOTED = re.compile(r"(?<!\w)'[^'\n]*'(?!\w)|“[^”\n]*”")
ADMIN_PHRASES = (
    "(Empty Label)",
    "single label",
    "invalid start byte",
    "codec can't decode",
    "now feeds",
    "read_write",
    "email_opt_out",
    "@cli",
)
_INDEX = re.compile(r"\[\d+\]")
_ARTICLE = re.compile(r"\ba (?=[aeiou])(?!one\b|use|user|uni|euro)", re.IGNORECASE)


def _cli_commands() -> re.Pattern[str]:
    from optout.cli.registry import COMMANDS

    names = "|".join(re.escape(name) for name in sorted(COMMANDS, key=len, reverse=True))
    return re.compile(rf"\boptout (?:--?[\w-]+ )*({names})\b")


CLI_COMMAND = _cli_commands()


# A name as code spells it (`exclude_from_sequences`, `unsubscribe_link`); an address or
# a domain is none.
CODE_WORD = re.compile(r"(?<![\w@.{/-])[a-z]+(?:_[a-z]+)+(?![\w@-]|\.\w)")


def code_words(text: str) -> list[str]:
    """Every name with underscores in `text` outside quotes, with some context: for the
    text of a page outside its `<code>` (where a CRM's own field names are shown)."""
    unquoted = _QUOTED.sub(" ", _MERGE_TAG.sub(" ", text))
    return [
        f"{m.group()!r} in …{unquoted[max(m.start() - 30, 0) : m.end() + 30]!r}…"
        for m in CODE_WORD.finditer(unquoted)
    ]


def admin_unfamiliar(text: str, *, names: tuple[str, ...] = ()) -> list[str]:
    """Every raw field path, CLI command, leaked internal phrase, list index ("[0]") and
    "a" before a vowel sound in `text`, each with some context. `names` are the admin's
    own (a workspace called "optout demo" is no command): they are left out."""
    text = _MERGE_TAG.sub(" ", text)
    for name in names:
        text = text.replace(name, " ")
    found = []
    unquoted = _QUOTED.sub(" ", text)
    for pattern, scanned in (
        (RAW_FIELD_PATH, unquoted),
        (CLI_COMMAND, text),
        (_INDEX, text),
        (_ARTICLE, text),
    ):
        for match in pattern.finditer(scanned):
            start, end = max(match.start() - 30, 0), match.end() + 30
            found.append(f"{match.group()!r} in …{scanned[start:end]!r}…")
    for phrase in ADMIN_PHRASES:
        at = text.find(phrase)
        if at >= 0:
            found.append(f"{phrase!r} in …{text[max(at - 30, 0) : at + len(phrase) + 30]!r}…")
    return found
