"""Canonical emails and domains (R18, R25, R34)."""

from __future__ import annotations

import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optout.errors import InvalidInput
from optout.normalize import (
    SPECIAL_USE_DOMAINS,
    _plain_address,
    _plain_ascii,
    domain_label,
    free_mail_domains,
    is_personal_domain,
    normalize_domain,
    normalize_email,
    registered_domain,
    split_domain_list,
)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("acme.com", "acme.com"),
        ("ACME.com.", "acme.com"),
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("http://user@acme.com:8080/path", "acme.com"),
        ("www.acme.co.uk", "acme.co.uk"),
        ("  eu.acme.com  ", "eu.acme.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("XN--BCHER-KVA.DE", "xn--bcher-kva.de"),
        ("Straße.de", "xn--strae-oqa.de"),  # IDNA 2008 keeps ß
    ],
)
def test_R18_domains_are_stripped_to_canonical_ascii(raw: str, canonical: str) -> None:
    assert normalize_domain(raw) == canonical


@pytest.mark.parametrize(
    "raw", ["", "   ", "localhost", "acme", "-acme.com", "acme..com", "192.168.0.1", "a b.com"]
)
def test_R34_malformed_domains_are_refused_with_the_value(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_domain(raw)
    assert "domain" in caught.value.message


def test_R18_domain_list_accepts_commas_newlines_and_duplicates() -> None:
    assert split_domain_list("acme.com, https://www.ACME.com/\nglobex.io;; initech.net,") == [
        "acme.com",
        "globex.io",
        "initech.net",
    ]


def test_R18_labels_and_registered_domains_find_variants() -> None:
    assert domain_label("acme.co.uk") == domain_label("acme.com") == "acme"
    assert registered_domain("eu.acme.co.uk") == "acme.co.uk"


def test_R1_addresses_normalize_to_one_identity() -> None:
    assert normalize_email(" John.Doe@Example.COM ").address == "john.doe@example.com"
    assert normalize_email("anna@Bücher.de").address == "anna@xn--bcher-kva.de"
    assert normalize_email("anna@Bücher.de").domain == "xn--bcher-kva.de"


@pytest.mark.parametrize(
    "raw", ["", "john", "john@", "@acme.com", "john@@acme.com", "jo hn@acme.com"]
)
def test_R34_malformed_emails_are_refused_with_the_value(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(raw)
    assert "not an email address" in caught.value.message


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("a@@b", "it has 2 @-signs, where an address has one"),
        ("ann.acme.com", "it has no @-sign"),
        ("ann@", "there must be something after the @-sign"),
        ("", "nothing was typed"),
    ],
)
def test_R34_a_refused_address_quotes_what_was_typed_and_what_would_do(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(raw)
    assert caught.value.message.startswith(f"{raw!r} is not an email address ({why})")
    assert caught.value.message.endswith("type one address, such as name@example.com")
    assert caught.value.value == raw


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("acme..com", "it has two dots in a row"),
        ("-acme.com", "a part between two dots cannot begin or end with a hyphen"),
        ("ac_me.com", "a domain holds only letters, digits, hyphens and dots"),
        ("büro..de", "it has two dots in a row"),
        ("10.0.0.1", "an IP address is no domain"),
    ],
)
def test_R34_a_refused_domain_quotes_what_was_typed_and_what_would_do(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_domain(raw)
    assert caught.value.message == (
        f"{raw!r} is not a domain ({why}): type a domain such as acme.com"
    )


def test_R25_free_mail_list_is_maintained_and_canonical() -> None:
    domains = free_mail_domains()
    assert {"gmail.com", "outlook.com", "yahoo.com", "web.de", "gmx.de", "orange.fr"} <= domains
    assert all(normalize_domain(d) == d for d in domains)
    assert is_personal_domain("gmail.com")
    assert not is_personal_domain("acme.com")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="abxn0-.", min_size=1, max_size=80))
def test_a_plain_ascii_domain_is_what_idna_makes_of_it(text: str) -> None:
    """Plain lowercase ASCII names skip IDNA's per-character checks (a 10,000-domain
    rule is saved in a fraction of the time); IDNA must agree with every one of them."""
    if _plain_ascii(text):
        assert idna.encode(text, uts46=True).decode("ascii") == text


_ADDRESS_PARTS = st.sampled_from(
    ["a", "Z", "0", "9", "_", "+", "-", ".", "..", "@", "xn--", "--", " ", '"', "é", "\u212a"]
)
_DOMAIN_ENDS = st.sampled_from(
    [
        "",
        ".com",
        ".io",
        ".co.uk",
        ".c",
        ".c0m",
        ".local",
        ".test",
        ".arpa",
        ".home.arpa",
        ".onion",
        ".invalid",
        ".localhost",
        "localhost",
        ".example",
        ".-x",
        ".x-",
        "." + "x" * 64,
    ]
)


def _validated(text: str) -> str | None:
    """What email-validator makes of `text`, as normalize_email stores it, or None."""
    import email_validator

    try:
        found = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError:
        return None
    return f"{found.local_part.lower()}@{found.ascii_domain.lower()}"


@settings(max_examples=3000, deadline=None)
@given(st.lists(_ADDRESS_PARTS, max_size=12).map("".join), _DOMAIN_ENDS)
def test_R34_a_plain_address_is_what_email_validator_makes_of_it(body: str, end: str) -> None:
    """Plain ASCII addresses are checked without email-validator (it is slow to load,
    and `optout explain` needs nothing else of it); for every one the quick check takes,
    email-validator takes it too and gives the same canonical address."""
    for text in (body + end, f"Ann.{body}@acme{end}", f"{body}@Acme{end}"):
        plain = _plain_address(text)
        if plain is not None:
            assert plain.address == _validated(text), text
            assert normalize_email(text) == plain


@pytest.mark.parametrize(
    "text",
    [
        "ann@acme.com",
        "Ann.Lee+q4@Sub.Acme-Labs.co.uk",
        "info@acme.io",
        "-ann@acme.com",
        "a_b@a1.b2.com",
        f"{'a' * 64}@acme.com",
        f"ann@{'a' * 63}.com",
    ],
)
def test_R34_the_quick_check_takes_the_common_addresses(text: str) -> None:
    plain = _plain_address(text)
    assert plain is not None
    assert plain.address == _validated(text)


@pytest.mark.parametrize(
    "text",
    [
        "ann@mail.local",
        "ann@test",
        "ann@x.onion",
        "ann@1.in-addr.arpa",
        "ann@xn--bcher-kva.de",
        "ann@ab--c.com",
        "ann..lee@acme.com",
        f"{'a' * 65}@acme.com",
        "\u212aate@acme.com",
        "ann@acme.c0m",
        "ann@bücher.de",
    ],
)
def test_R34_the_quick_check_leaves_the_rest_to_email_validator(text: str) -> None:
    assert _plain_address(text) is None


def test_R34_the_quick_check_knows_every_name_email_validator_reserves() -> None:
    import email_validator

    assert set(email_validator.SPECIAL_USE_DOMAIN_NAMES) <= SPECIAL_USE_DOMAINS
