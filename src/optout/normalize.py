"""Canonical forms of email addresses and domains (SPEC R18, R25, R34).

Everything stored and everything compared goes through here, so that
`Acme.COM.`, `https://www.acme.com/about` and `acme.com` are one domain and an
opt-out holds for an address whatever its spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from optout.errors import InvalidInput

if TYPE_CHECKING:
    import email_validator

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@cache
def _extractor() -> Any:
    """tldextract with its bundled suffix list; never fetched over the network.

    Imported on first use: it brings an HTTP client along, which the pure core
    (filters, eligibility) must not load.
    """
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@dataclass(frozen=True)
class EmailAddress:
    address: str
    domain: str


@lru_cache(maxsize=65536)
def normalize_domain(raw: str) -> str:
    """Return the canonical ASCII form of a domain, or raise InvalidInput.

    Strips scheme, user info, port, path, `www.`, case and trailing dots;
    IDN labels become their ASCII (punycode) form.
    """
    text = raw.strip()
    if not text:
        raise InvalidInput(
            f"no domain was typed: type a domain such as {DOMAIN_EXAMPLE}", value=raw
        )
    text = _SCHEME.sub("", text)
    if "@" in text.split("/", 1)[0]:
        text = text.split("/", 1)[0].rsplit("@", 1)[1]
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.split(":", 1)[0].strip().rstrip(".").lower()
    if text.startswith("www."):
        text = text[4:]
    if not text:
        raise _not_a_domain(raw, "it has no name in it")
    if _plain_ascii(text):
        ascii_form = text  # what IDNA makes of it, without the per-character checks
    else:
        import idna  # only for names beyond plain ASCII

        try:
            ascii_form = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise _not_a_domain(raw, _label_problem(text.split("."))) from exc
    labels = ascii_form.split(".")
    if len(labels) == 1 and _LABEL.match(labels[0]) and _is_public_suffix(labels[0]):
        raise _not_a_domain(
            raw,
            f"a domain has at least one dot; for every domain that ends in .{labels[0]}, "
            f'use the operator ends with ".{labels[0]}"',
        )
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise _not_a_domain(raw, _label_problem(labels))
    if labels[-1].isdigit():
        raise _not_a_domain(raw, "an IP address is no domain")
    return ascii_form


DOMAIN_EXAMPLE = "acme.com"


def _not_a_domain(raw: str, problem: str) -> InvalidInput:
    """The value as typed, why it is no domain, and what one looks like."""
    return InvalidInput(
        f"{raw.strip()!r} is not a domain ({problem}): type a domain such as {DOMAIN_EXAMPLE}",
        value=raw,
    )


def _is_public_suffix(label: str) -> bool:
    """True for a suffix such as `edu` or `de`, under which domains are registered."""
    return bool(_extractor()(f"example.{label}").suffix == label)


def _label_problem(labels: list[str]) -> str:
    if len(labels) < 2:
        return "a domain has at least one dot"
    if any(not label for label in labels):
        return "it has two dots in a row"
    if any(label.startswith("-") or label.endswith("-") for label in labels):
        return "a part between two dots cannot begin or end with a hyphen"
    if any(len(label) > 63 for label in labels):
        return "a part between two dots has at most 63 characters"
    if any(label[2:4] == "--" and not label.startswith("xn--") for label in labels):
        return "a part between two dots cannot have hyphens in its third and fourth places"
    return "a domain holds only letters, digits, hyphens and dots"


def _plain_ascii(text: str) -> bool:
    """A lowercase ASCII name that IDNA leaves as it is: letters, digits and inner
    hyphens, no punycode label (`xn--` must be decoded to be checked), none with the
    hyphens in third and fourth place that IDNA refuses, within the length limits."""
    if not text.isascii() or len(text) > 253:
        return False
    return all(_LABEL.match(label) and label[2:4] != "--" for label in text.split("."))


def split_domain_list(raw: str) -> list[str]:
    """Parse comma- (or newline-) separated domains; duplicates dropped, order kept."""
    domains: dict[str, None] = {}
    for part in re.split(r"[,\n;]", raw):
        if part.strip():
            domains[normalize_domain(part)] = None
    return list(domains)


@lru_cache(maxsize=65536)
def domain_label(domain: str) -> str:
    """The registrable name without its public suffix: `acme` for `eu.acme.co.uk`.

    Two domains with the same label and a different suffix are near-miss
    variants of each other (R18 preview).
    """
    return str(_extractor()(domain).domain or domain)


def registered_domain(domain: str) -> str:
    """The domain under its public suffix: `acme.co.uk` for `eu.acme.co.uk`."""
    result = _extractor()(domain)
    if result.domain and result.suffix:
        return f"{result.domain}.{result.suffix}"
    return domain


# An address that email-validator takes as it is and that needs none of its Unicode,
# quoting or IDNA rules: letters, digits, `_`, `+`, `-` in dot-separated runs before the @,
# host labels of letters, digits and inner hyphens after it, ending in a top-level domain of
# letters. Anything else (and every error) is left to email-validator.
_PLAIN_ADDRESS = re.compile(
    r"(?P<local>[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})",
    re.ASCII,
)
_LOCAL_MAX, _DOMAIN_MAX, _ADDRESS_MAX = 64, 253, 254
# The reserved names email-validator refuses after the @ (its SPECIAL_USE_DOMAIN_NAMES;
# tests/test_normalize.py holds the two lists together).
SPECIAL_USE_DOMAINS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _plain_address(text: str) -> EmailAddress | None:
    """The canonical form of a plain ASCII address, or None to ask email-validator.

    Most addresses are plain; for them this gives what email-validator gives, without
    loading it (its patterns take a tenth of a command's start)."""
    if not text.isascii() or len(text) > _ADDRESS_MAX:
        return None  # a non-ASCII letter may lower-case to an ASCII one (the Kelvin sign)
    lowered = text.lower()
    found = _PLAIN_ADDRESS.fullmatch(lowered)
    if found is None:
        return None
    local, domain = found.group("local"), found.group("domain")
    if len(local) > _LOCAL_MAX or len(domain) > _DOMAIN_MAX or "--" in domain:
        return None
    labels = domain.split(".")
    if any(".".join(labels[i:]) in SPECIAL_USE_DOMAINS for i in range(len(labels))):
        return None
    return EmailAddress(address=lowered, domain=domain)


@lru_cache(maxsize=65536)
def normalize_email(raw: str) -> EmailAddress:
    """Validate and canonicalize an address (no DNS lookups), or raise InvalidInput."""
    text = raw.strip()
    plain = _plain_address(text)
    if plain is not None:
        return plain
    import email_validator

    try:
        result = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidInput(
            f"{text!r} is not an email address ({_email_problem(text, exc)}): type one "
            f"address, such as {EMAIL_EXAMPLE}",
            value=raw,
        ) from exc
    local = result.local_part.lower()
    domain = result.ascii_domain.lower()
    return EmailAddress(address=f"{local}@{domain}", domain=domain)


EMAIL_EXAMPLE = "name@example.com"


def _email_problem(text: str, exc: email_validator.EmailNotValidError) -> str:
    """Why `text` is no address, in a few words: the @-signs first, the commonest slip."""
    ats = text.count("@")
    if not text:
        return "nothing was typed"
    if ats == 0:
        return "it has no @-sign"
    if ats > 1:
        return f"it has {ats} @-signs, where an address has one"
    said = "; ".join(part[:1].lower() + part[1:] for part in str(exc).rstrip(".").split(". "))
    return said


def address_key(raw: str) -> str:
    """What an address typed into a form stands for: its canonical form when it is an
    address (so `Ann@Acme.COM` and its fullwidth spelling are one key), else the text trimmed and
    lower-cased. Anything that counts per address (the sign-in limit) keys on this, the
    same form the lookup behind it uses."""
    try:
        return normalize_email(raw).address
    except InvalidInput:
        return raw.strip().lower()


@cache
def free_mail_domains() -> frozenset[str]:
    """The maintained list of free-mail providers (R25), in canonical form."""
    text = resources.files("optout").joinpath("data/free_mail_domains.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def is_personal_domain(domain: str) -> bool:
    return domain in free_mail_domains()
