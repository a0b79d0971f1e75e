"""Unsubscribe tokens reveal nothing, cannot be forged or altered, and survive key rotation (R3)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
from pathlib import Path

import pytest

from optout.config import Settings, load_or_create_secret_keys
from optout.errors import InvalidInput
from optout.mail.tokens import InvalidToken, UnsubscribeTokens

OLD_KEY = "old-secret-key-0123456789abcdef"
NEW_KEY = "new-secret-key-fedcba9876543210"
WORKSPACE, PERSON = 424242, 987654321


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_R3_token_round_trip_names_the_person_and_address() -> None:
    tokens = UnsubscribeTokens([NEW_KEY])
    token = tokens.issue(workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com")

    claims = tokens.read(token)

    assert (claims.workspace_id, claims.person_id) == (WORKSPACE, PERSON)
    assert claims.matches("anna@acme.com")
    assert claims.matches("  Anna@ACME.com ")  # any spelling of the same address
    assert not claims.matches("bob@acme.com")
    assert not claims.matches("not an address")


def test_R3_token_is_url_safe_without_padding() -> None:
    tokens = UnsubscribeTokens([NEW_KEY])
    for person in range(1, 40):
        token = tokens.issue(workspace_id=1, person_id=person, email=f"p{person}@acme.com")
        assert token.isascii()
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert tokens.read(token).person_id == person


def test_R3_token_reveals_no_address() -> None:
    address = "anna.lindqvist@acme-industries.com"
    token = UnsubscribeTokens([NEW_KEY]).issue(
        workspace_id=WORKSPACE, person_id=PERSON, email=address
    )
    raw = _raw(token)

    for secret in ("anna", "lindqvist", "acme", str(WORKSPACE), str(PERSON)):
        assert secret not in token.lower()
        assert secret.encode() not in raw.lower()
    for packed in (struct.pack(">Q", WORKSPACE), struct.pack(">Q", PERSON)):
        assert packed not in raw
    for digest in (
        hashlib.sha256(address.encode()).digest(),
        hashlib.md5(address.encode()).digest(),
    ):
        assert digest[:8] not in raw


def test_R3_token_cannot_be_forged_or_altered() -> None:
    tokens = UnsubscribeTokens([NEW_KEY])
    token = tokens.issue(workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com")
    raw = bytearray(_raw(token))

    for position in range(len(raw)):  # flipping any bit of any byte breaks it
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(tampered)).decode().rstrip("=")
        with pytest.raises(InvalidToken):
            tokens.read(forged)
    for garbage in ("", "x", "not-a-token", token[:-4], token + "AAAA", "é" * 10, "A" * 2000):
        with pytest.raises(InvalidToken):
            tokens.read(garbage)
    # Issued with a key we do not hold: a forgery.
    foreign = UnsubscribeTokens(["someone-elses-secret-key"]).issue(
        workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com"
    )
    with pytest.raises(InvalidToken):
        tokens.read(foreign)


URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_R3_token_altered_in_any_one_character_is_refused() -> None:
    tokens = UnsubscribeTokens([NEW_KEY])
    token = tokens.issue(workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com")
    # Every character replaced by every other one, including the spellings a lenient
    # base64 decoder would read as the same bytes (+ for -, / for _) and stray padding.
    for position, original in enumerate(token):
        for replacement in URL_SAFE + "+/=. ~%":
            if replacement == original:
                continue
            altered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(InvalidToken):
                tokens.read(altered)
    # Inserted characters anywhere, and the token's other base64 spelling.
    for position in range(len(token) + 1):
        for extra in ("=", " ", "\n", "A"):
            with pytest.raises(InvalidToken):
                tokens.read(token[:position] + extra + token[position:])
    assert tokens.read(token).person_id == PERSON


def test_R3_a_token_with_dash_or_underscore_has_no_second_spelling() -> None:
    tokens = UnsubscribeTokens([NEW_KEY])
    found = [
        token
        for person in range(1, 200)
        if set("-_") & set(token := tokens.issue(workspace_id=1, person_id=person, email="a@b.io"))
    ]
    assert found  # among 199 random tokens, some hold a - or a _
    for token in found:
        assert tokens.read(token)
        with pytest.raises(InvalidToken):
            tokens.read(token.replace("-", "+").replace("_", "/"))


def test_R3_truncated_token_is_refused() -> None:
    tokens = UnsubscribeTokens([NEW_KEY])
    token = tokens.issue(workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com")
    for length in range(len(token)):
        with pytest.raises(InvalidToken):
            tokens.read(token[:length])
        with pytest.raises(InvalidToken):  # cut at the front
            tokens.read(token[len(token) - length :])
    for position in range(len(token)):  # one character dropped anywhere
        with pytest.raises(InvalidToken):
            tokens.read(token[:position] + token[position + 1 :])


def test_R3_tokens_of_several_retired_keys_are_refused_beyond_the_kept_ones() -> None:
    keys = [f"rotation-key-{n}-0123456789abcdef" for n in range(4)]  # oldest first
    issued = {
        key: UnsubscribeTokens([key]).issue(
            workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com"
        )
        for key in keys
    }
    kept = UnsubscribeTokens(list(reversed(keys[2:])))  # two rotations on, two keys kept
    for key in keys[2:]:
        assert kept.read(issued[key]).person_id == PERSON
    for key in keys[:2]:
        with pytest.raises(InvalidToken):
            kept.read(issued[key])


def test_R3_invalid_token_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid"):
        UnsubscribeTokens([NEW_KEY]).read("garbage")


def test_R3_old_links_work_after_key_rotation() -> None:
    before = UnsubscribeTokens([OLD_KEY])
    old_token = before.issue(workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com")

    after = UnsubscribeTokens([NEW_KEY, OLD_KEY])
    new_token = after.issue(workspace_id=WORKSPACE, person_id=PERSON, email="anna@acme.com")

    old_claims = after.read(old_token)
    assert old_claims.person_id == PERSON
    assert old_claims.matches("anna@acme.com")
    assert after.read(new_token).matches("anna@acme.com")
    with pytest.raises(InvalidToken):  # the new key signs: holders of only the old cannot read
        before.read(new_token)
    with pytest.raises(InvalidToken):  # a retired key's links stop working once it is dropped
        UnsubscribeTokens([NEW_KEY]).read(old_token)


def test_tokens_need_a_key_and_valid_ids() -> None:
    with pytest.raises(InvalidInput, match="at least one secret key"):
        UnsubscribeTokens([" ", ""])
    tokens = UnsubscribeTokens([NEW_KEY])
    with pytest.raises(InvalidInput, match="person_id"):
        tokens.issue(workspace_id=1, person_id=0, email="anna@acme.com")
    with pytest.raises(InvalidInput, match="not an email address"):
        tokens.issue(workspace_id=1, person_id=1, email="anna at acme")


def test_secret_keys_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_keys"

    first = load_or_create_secret_keys(path)
    again = load_or_create_secret_keys(path)

    assert first == again
    assert len(first) == 1
    assert len(first[0]) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_keys"]  # no temporary left
    settings = Settings(database_url="sqlite://", secret_keys_path=path)
    assert settings.signing_keys() == first


def test_secret_keys_and_base_url_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_SECRET_KEYS", f" {NEW_KEY} , {OLD_KEY} ,")
    monkeypatch.setenv("OPTOUT_BASE_URL", "https://mail.example.com/")
    settings = Settings.from_env()

    assert settings.signing_keys() == (NEW_KEY, OLD_KEY)
    assert settings.unsubscribe_url("abc_-1") == "https://mail.example.com/u/abc_-1"

    monkeypatch.setenv("OPTOUT_SECRET_KEYS", "short")
    with pytest.raises(InvalidInput, match="OPTOUT_SECRET_KEYS: key 1 is 5 characters"):
        Settings.from_env()
    monkeypatch.setenv("OPTOUT_SECRET_KEYS", NEW_KEY)
    monkeypatch.setenv("OPTOUT_BASE_URL", "mail.example.com")
    with pytest.raises(InvalidInput, match="OPTOUT_BASE_URL"):
        Settings.from_env()


def test_default_settings_keep_the_database_url_and_local_base_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPTOUT_DATABASE_URL", "OPTOUT_SECRET_KEYS", "OPTOUT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.database_url == "sqlite:///var/optout.sqlite3"
    assert settings.secret_keys == ()
    assert settings.unsubscribe_url("t") == "http://127.0.0.1:8000/u/t"
