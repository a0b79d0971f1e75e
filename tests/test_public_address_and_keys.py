"""Where links point and where the encryption keys come from, without a server: the address
`optout serve` listens on becomes the public one unless OPTOUT_BASE_URL says otherwise,
an address of this machine only is told apart, and the key file is made once, private,
and read by every process (R3, R31)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from optout.config import (
    Settings,
    crm_timeouts_from,
    encryption_key_file_from,
    encryption_keys_from,
    is_loopback_url,
    listening_url,
)
from optout.crypto import SecretBox
from optout.errors import InvalidInput


def test_R3_links_point_where_the_service_listens_unless_the_environment_names_an_address() -> None:
    served = Settings(database_url="sqlite://").served_at("127.0.0.1", 9120)
    assert served.base_url == "http://127.0.0.1:9120"
    assert served.unsubscribe_url("t") == "http://127.0.0.1:9120/u/t"
    assert "base_url" in served.from_environment  # published for the workers

    given = Settings(
        database_url="sqlite://",
        base_url="https://optout.example.com",
        from_environment=frozenset({"base_url"}),
    ).served_at("127.0.0.1", 9120)
    assert given.base_url == "https://optout.example.com"

    assert listening_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert listening_url("::1", 8443) == "http://[::1]:8443"
    assert listening_url("10.1.2.3", 9000) == "http://10.1.2.3:9000"


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.1", True),
        ("http://localhost:9120", True),
        ("http://[::1]:9120", True),
        ("https://optout.example.com", False),
        ("http://10.1.2.3:9000", False),
    ],
)
def test_R3_an_address_of_this_machine_only_is_told_apart(url: str, local: bool) -> None:
    assert is_loopback_url(url) is local


def test_R31_the_key_file_is_made_once_private_and_read_by_every_process(
    tmp_path: Path,
) -> None:
    env = {"OPTOUT_DATABASE_URL": f"sqlite:///{tmp_path}/data/optout.sqlite3"}
    path = encryption_key_file_from(env)
    assert path == tmp_path / "data" / "encryption_keys"
    assert encryption_keys_from(env) == ()  # nothing made before the service starts

    first = Settings(database_url="sqlite://", encryption_key_file=path)
    started = first.with_encryption_key_file()
    again = first.with_encryption_key_file()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert started.encryption_keys == again.encryption_keys
    assert len(started.encryption_keys) == 1
    assert encryption_keys_from(env) == started.encryption_keys  # a worker, the scheduler
    box = SecretBox(encryption_keys_from(env))
    assert box.decrypt(SecretBox(started.encryption_keys).encrypt("pat-na1")) == "pat-na1"
    # Keys in the environment win, and no file is read or made for them.
    assert encryption_keys_from({**env, "OPTOUT_ENCRYPTION_KEYS": "k1, k2"}) == ("k1", "k2")
    assert encryption_key_file_from({"OPTOUT_ENCRYPTION_KEY_FILE": "/srv/keys"}) == Path(
        "/srv/keys"
    )


def test_R34_crm_timeouts_are_read_from_the_environment_and_checked() -> None:
    assert (crm_timeouts_from({}).connect, crm_timeouts_from({}).read) == (5.0, 20.0)
    assert crm_timeouts_from({"OPTOUT_CRM_READ_TIMEOUT": "45"}).read == 45.0
    with pytest.raises(InvalidInput, match="OPTOUT_CRM_READ_TIMEOUT: 'soon'"):
        crm_timeouts_from({"OPTOUT_CRM_READ_TIMEOUT": "soon"})
