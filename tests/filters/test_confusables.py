"""Look-alike domains by UTS #39 skeletons: the pure comparison, without a database."""

from __future__ import annotations

from optout.filters import parse
from optout.filters.confusables import (
    LookAlike,
    domain_skeleton,
    listed_domains,
    look_alikes,
    readable,
    skeleton,
)
from optout.normalize import normalize_domain

CYRILLIC_A = "\u0430"  # looks like a Latin a
GREEK_OMICRON = "\u03bf"  # looks like a Latin o
CYRILLIC_ES = "\u0441"  # looks like a Latin c


def test_skeleton_follows_the_unicode_confusables_data() -> None:
    assert skeleton(f"{CYRILLIC_A}cme") == skeleton("acme")
    assert skeleton(f"g{GREEK_OMICRON}{GREEK_OMICRON}gle") == skeleton("google")
    assert skeleton("paypa1") == skeleton("paypal")  # the digit one reads as an l
    assert skeleton("rn") == skeleton("m")  # r and n side by side read as m
    assert skeleton("acme") != skeleton("acne")
    assert skeleton("") == ""


def test_a_cyrillic_letter_in_a_listed_domain_is_a_look_alike() -> None:
    spoof = normalize_domain(f"{CYRILLIC_A}cme.com")
    assert spoof.startswith("xn--")  # stored in its ASCII form, as every domain
    assert readable(spoof) == f"{CYRILLIC_A}cme.com"
    assert domain_skeleton(spoof) == domain_skeleton("acme.com")
    found = look_alikes(["acme.com"], [spoof, "acme.com", "acme.co.uk", "globex.io"])
    assert found == [LookAlike(listed="acme.com", present=spoof)]
    assert found[0].present_unicode == f"{CYRILLIC_A}cme.com"


def test_look_alikes_in_plain_ascii_and_in_any_label() -> None:
    present = [
        "acrne.com",  # rn for m
        normalize_domain(f"{CYRILLIC_A}cme.com"),
        normalize_domain(f"mail.{CYRILLIC_A}{CYRILLIC_ES}me.com"),
        "mail.acme.com",
        normalize_domain(f"globex.{CYRILLIC_ES}om"),
    ]
    found = look_alikes(["acme.com", "mail.acme.com", "globex.com"], present)
    assert [(f.listed, readable(f.present)) for f in found] == [
        ("acme.com", "acrne.com"),
        ("acme.com", f"{CYRILLIC_A}cme.com"),
        ("globex.com", f"globex.{CYRILLIC_ES}om"),
        ("mail.acme.com", f"mail.{CYRILLIC_A}{CYRILLIC_ES}me.com"),
    ]


def test_a_listed_domain_is_never_its_own_look_alike() -> None:
    # Both spellings listed: each is covered, neither is reported.
    spoof = normalize_domain(f"{CYRILLIC_A}cme.com")
    assert look_alikes(["acme.com", spoof], ["acme.com", spoof]) == []
    assert look_alikes([], ["acme.com"]) == []
    assert look_alikes(["acme.com"], []) == []


def test_suffix_variants_and_other_names_are_not_look_alikes() -> None:
    present = ["acme.co.uk", "acme.de", "acme-corp.com", "acne.com", "globex.io", "cme.com"]
    assert look_alikes(["acme.com"], present) == []


def test_listed_domains_are_those_of_whole_domain_matches() -> None:
    node = parse(
        "(company.domain in (acme.com, globex.io) or person.email_domain = initech.com) "
        'and company.domain ends with ".gov" and person.title contains "acme.org"'
    )
    assert listed_domains(node) == {"acme.com", "globex.io", "initech.com"}
    assert listed_domains(None) == set()


def test_a_plain_ascii_domain_has_the_skeleton_of_the_full_mapping() -> None:
    # Every printable ASCII character, the confusable ones (1, 0, I, |, m, %) included.
    every = "".join(chr(cp) for cp in range(33, 127))
    for domain in (every, "paypa1.com", "rnicrosoft.com", "ACME.COM", "a-b_0.io.", " x.y "):
        full = skeleton(readable(domain.strip().rstrip(".")).casefold())
        assert domain_skeleton(domain) == full, domain
    # An IDN label goes through the whole mapping: decoded, it reads as the ASCII name.
    assert domain_skeleton(normalize_domain(f"{CYRILLIC_A}cme.com")) == domain_skeleton("acme.com")
