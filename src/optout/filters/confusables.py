"""Look-alike domains: two domains that read the same to the eye, found with the
skeletons of Unicode Technical Standard #39 (section 4, "Confusable Detection").

`acme.com` spelled with a Cyrillic a (U+0430) is another domain to every mail server, so an
exclusion listing `acme.com` does not cover it, yet a person reading a list takes it
for the same. The skeleton of a string maps each character to the prototype of its
confusable class (after NFD, and NFD again after mapping): two strings with the same
skeleton are visually confusable. The mappings are the Unicode data file
`confusables.txt`, vendored as `optout/data/confusables.txt`.

Pure: no database and no I/O beyond reading the vendored file once.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files

from optout.filters.ast import Node, conditions
from optout.filters.fields import FieldType
from optout.filters.fields import lookup as lookup_field


@dataclass(frozen=True, order=True)
class LookAlike:
    listed: str  # a domain the exclusion names (ASCII form)
    present: str  # a different domain in the data that looks the same (ASCII form)

    @property
    def present_unicode(self) -> str:
        """How `present` reads on screen (its IDN labels decoded)."""
        return readable(self.present)


@cache
def _prototypes() -> Mapping[int, str]:
    """Code point -> its prototype string, from the vendored confusables data."""
    return _table(_data_lines())


def _data_lines() -> list[str]:
    text = (files("optout") / "data" / "confusables.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _table(lines: Iterable[str]) -> dict[int, str]:
    table: dict[int, str] = {}
    for line in lines:
        source, target = line.split(";")
        table[int(source, 16)] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of `text`: NFD, each character replaced by its prototype,
    NFD again. Equal skeletons mean the two strings are visually confusable."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).translate(_prototypes()))


def readable(domain: str) -> str:
    """A domain as a person sees it: IDN (`xn--`) labels decoded to Unicode."""
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            import idna  # only for a name with an IDN label

            with contextlib.suppress(idna.IDNAError, UnicodeError):
                label = idna.decode(label)
        labels.append(label)
    return ".".join(labels)


@cache
def _ascii_prototypes() -> tuple[tuple[str, str], ...]:
    """The ASCII characters that have a prototype, with it, when every prototype is stable
    under NFD and holds none of those characters (so it is in the vendored data): then an
    ASCII string's skeleton is a few `str.replace`, in any order. Empty otherwise."""
    # Only the lines of ASCII characters (code points 0000 to 007F) are parsed: the whole
    # table takes about 30 ms to build, which a command that only compares plain domains
    # (`optout explain`) would otherwise spend at every start.
    ascii_lines = (line for line in _data_lines() if line[:2] == "00" and line.index(";") == 4)
    table = _table(ascii_lines)
    pairs = tuple((chr(cp), target) for cp, target in table.items() if cp < 128)
    sources = {source for source, _ in pairs}
    usable = all(
        unicodedata.normalize("NFD", target) == target and not sources & set(target)
        for _, target in pairs
    )
    return pairs if usable else ()


def ascii_replacements() -> tuple[tuple[str, str], ...]:
    """What makes the skeleton of a case-folded plain ASCII domain without IDN labels, as
    `str.replace` in any order (the database can apply them too); empty when the data
    does not allow it."""
    return _ascii_prototypes()


def domain_skeleton(domain: str) -> str:
    """The skeleton of a domain as it reads on screen, case-folded (domains have no case).
    Most domains in the data are plain ASCII without IDN labels: their skeleton is the
    same mapping without the Unicode normalizations, several times faster."""
    name = domain.strip().rstrip(".")
    folded = name.casefold()
    fast = _ascii_prototypes()
    if fast and folded.isascii() and "xn--" not in folded:
        for source, target in fast:
            if source in folded:
                folded = folded.replace(source, target)
        return folded
    return _unicode_domain_skeleton(name)


@lru_cache(maxsize=65536)
def _unicode_domain_skeleton(name: str) -> str:
    return skeleton(readable(name).casefold())


def look_alikes(listed: Iterable[str], present: Iterable[str]) -> list[LookAlike]:
    """Domains of `present` that look like one of `listed` without being it, sorted.

    Both sides are domains in their normalized ASCII form, as stored; a domain that is
    itself listed is never reported, whatever it looks like.
    """
    listed_set = {domain for domain in listed if domain}
    by_skeleton: dict[str, list[str]] = {}
    for domain in sorted(listed_set):
        by_skeleton.setdefault(domain_skeleton(domain), []).append(domain)
    found = {
        LookAlike(listed=original, present=domain)
        for domain in set(present)
        if domain and domain not in listed_set
        for original in by_skeleton.get(domain_skeleton(domain), ())
    }
    return sorted(found)


def listed_domains(node: Node | None) -> set[str]:
    """The domains a filter names with `=` or `in` on a domain field (the whole-domain
    matches that a look-alike slips past)."""
    return {domain for domains in listed_by_field(node).values() for domain in domains}


def listed_by_field(node: Node | None) -> dict[str, set[str]]:
    """`listed_domains`, by the domain field that names them (`company.domain`, ...)."""
    listed: dict[str, set[str]] = {}
    if node is None:
        return listed
    for cond in conditions(node):
        if lookup_field(cond.field).type is FieldType.DOMAIN and cond.op in ("eq", "in"):
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            listed.setdefault(cond.field, set()).update(str(v) for v in values)
    return listed
