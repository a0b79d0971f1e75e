"""Which passwords are refused: too short, digits only, or one of the patterns guessers
try first (a keyboard row, a run of the alphabet, one character or chunk repeated, a
common word with a few digits, the user's own address). A refusal says what to do
instead. Long passphrases of ordinary words pass."""

from __future__ import annotations

from optout.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MIN_DISTINCT_CHARACTERS = 4
# Left after taking the common words and sequences out, a password must still have this
# many characters, not all digits and symbols.
MIN_REST = 6

_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1234567890",
    "01234567890",
)
_COMMON_WORDS = (
    "password",
    "passwort",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "login",
    "secret",
    "changeme",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "trustno1",
)
_SEQUENCE_RUN = 4  # this many neighbours of a sequence in a row count as part of a pattern


class WeakPassword(InvalidInput):
    """A password the rules refuse; the message says why and what would do."""


def check_password(password: str, *, email: str = "") -> None:
    """Raise WeakPassword unless `password` is long enough and no common pattern."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters; "
            "a few unrelated words make a good one"
        )
    text = password.lower()
    if text.isdigit():
        raise WeakPassword("a password of digits only is easy to guess; use words as well")
    if len(set(text)) < MIN_DISTINCT_CHARACTERS or _repeats_a_chunk(text):
        raise WeakPassword("a password that repeats itself is easy to guess; use a few words")
    if email and _mentions_address(text, email.strip().lower()):
        raise WeakPassword("a password must not contain your email address or its name")
    rest = _without_patterns(text)
    if len(rest) < MIN_REST or not any(ch.isalpha() for ch in rest):
        raise WeakPassword(
            "this password is a common word, a keyboard row or a sequence with a few "
            "characters added, which guessers try first; use a few unrelated words"
        )


def _repeats_a_chunk(text: str) -> bool:
    """`abcabcabca`, `passpasspass`: a chunk of at most half the length, repeated."""
    for size in range(1, len(text) // 2 + 1):
        chunk = text[:size]
        if (chunk * (len(text) // size + 1))[: len(text)] == text:
            return True
    return False


def _mentions_address(text: str, email: str) -> bool:
    local = email.partition("@")[0]
    return email in text or (
        len(local) >= 4 and local in text and len(text) - len(local) < MIN_REST
    )


def _without_patterns(text: str) -> str:
    """`text` with the common words and runs of keyboard or alphabet sequences cut out."""
    for word in _COMMON_WORDS:
        text = text.replace(word, "")
    kept = []
    index = 0
    while index < len(text):
        run = _sequence_run(text, index)
        if run >= _SEQUENCE_RUN:
            index += run
            continue
        kept.append(text[index])
        index += 1
    return "".join(kept)


def _sequence_run(text: str, start: int) -> int:
    """The length of the longest run from `start` that is a piece of a known sequence,
    forwards or backwards."""
    best = 1
    for sequence in _SEQUENCES:
        for line in (sequence, sequence[::-1]):
            at = line.find(text[start])
            while at != -1:
                length = 0
                while (
                    start + length < len(text)
                    and at + length < len(line)
                    and text[start + length] == line[at + length]
                ):
                    length += 1
                best = max(best, length)
                at = line.find(text[start], at + 1)
    return best
