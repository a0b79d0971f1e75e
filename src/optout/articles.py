"""English articles for words put into messages at run time: "an exclusion", "a domain"."""

from __future__ import annotations

# Words that start with a vowel letter and a consonant sound, or the other way round.
_A_BEFORE = ("one", "once", "use", "user", "usu", "uni", "eu", "ur")
_AN_BEFORE = ("hour", "honest", "honor", "honour")


def with_article(word: str) -> str:
    """`word` after "a" or "an", as it is spoken: "an exclusion", "a user", "an hour"."""
    folded = word.lower()
    vowel = folded[:1] in ("a", "e", "i", "o", "u")
    if folded.startswith(_AN_BEFORE) or (vowel and not folded.startswith(_A_BEFORE)):
        return f"an {word}"
    return f"a {word}"
