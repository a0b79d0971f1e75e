"""A worker on another machine needs only the database URL: the link keys, the web app's
public address and the mail relay come from the database (R3: the links it signs open the
web app's unsubscribe page)."""

from __future__ import annotations

import email
import json
import re
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from optout import deployment
from optout.config import Settings
from optout.crypto import new_key
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.errors import InvalidInput
from optout.mail.tokens import UnsubscribeTokens
from tests.cli.conftest import STEPS, Cli

ENV_KEY = "kept-only-in-the-environment-0123456789"
ENCRYPTION_KEY = new_key()


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each process runs in a folder of its own, as on another machine: no var/secret_keys."""
    for name in ("OPTOUT_SECRET_KEYS", "OPTOUT_BASE_URL", "OPTOUT_TRANSPORT_URL"):
        monkeypatch.delenv(name, raising=False)
    machine = tmp_path / "machine"
    machine.mkdir()
    monkeypatch.chdir(machine)
    return machine


def _settings(
    cli: Cli, machine: Path, *, encryption_keys: tuple[str, ...] = (), **given: str
) -> Settings:
    """What a process started in `machine` with only `given` (and `encryption_keys`)
    besides the URL would use."""
    engine = create_engine(cli.url)
    try:
        return deployment.completed(
            Settings(
                database_url=cli.url,
                secret_keys_path=machine / "var" / "secret_keys",
                encryption_keys=encryption_keys,
                from_environment=frozenset(given),
                **given,  # type: ignore[arg-type]
            ),
            engine,
        )
    finally:
        engine.dispose()


def _publish(cli: Cli, **given: object) -> None:
    engine = create_engine(cli.url)
    try:
        deployment.publish(
            Settings(database_url=cli.url, from_environment=frozenset(given), **given),  # type: ignore[arg-type]
            engine,
        )
    finally:
        engine.dispose()


def _stored(cli: Cli) -> str:
    engine = create_engine(cli.url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                sa.select(t.deployment_settings.c.name, t.deployment_settings.c.value)
            )
            return "\n".join(f"{name}={value}" for name, value in rows)
    finally:
        engine.dispose()


def test_R3_a_worker_given_the_database_url_and_encryption_keys_signs_links_the_web_app_opens(
    cli: Cli, tmp_path: Path, elsewhere: Path
) -> None:
    outbox = tmp_path / "outbox"
    with cli.seed() as world:
        world.company("acme.com", "Acme Corp")
        ann = world.person("ann@acme.com", company="acme.com", first_name="Ann")
        world.enroll(world.sequence("Intro", steps=STEPS), [ann])
    # The web service was started with its public address and the relay.
    _publish(cli, base_url="https://optout.example.com", transport_url=f"outbox:{outbox}")
    web = _settings(cli, tmp_path / "web-machine", encryption_keys=(ENCRYPTION_KEY,))

    result = cli.run("worker", "--once", "--json", OPTOUT_ENCRYPTION_KEYS=ENCRYPTION_KEY)

    assert result.exit_code == 0, result.stderr
    (sent,) = outbox.glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=policy.default)  # type: ignore[misc]
    link = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert link is not None, message["List-Unsubscribe"]
    assert link.group(1).startswith("https://optout.example.com/u/")
    claims = UnsubscribeTokens(web.signing_keys()).read(link.group(1).rsplit("/", 1)[1])
    assert claims.person_id == ann
    assert claims.matches("ann@acme.com")
    assert not (elsewhere / "var" / "secret_keys").exists()


def test_R3_keys_an_installation_kept_in_its_file_are_taken_over(
    cli: Cli, tmp_path: Path, elsewhere: Path
) -> None:
    old = elsewhere / "var" / "secret_keys"
    old.parent.mkdir()
    old.write_text("# keys\nthe-key-mail-was-signed-with-01234\n")

    first = _settings(cli, elsewhere, encryption_keys=(ENCRYPTION_KEY,))
    second = _settings(cli, tmp_path / "new-machine", encryption_keys=(ENCRYPTION_KEY,))

    assert first.signing_keys() == second.signing_keys() == ("the-key-mail-was-signed-with-01234",)
    assert "the-key-mail-was-signed-with-01234" not in _stored(cli)


def test_R3_a_process_set_explicitly_keeps_its_own_values(cli: Cli, tmp_path: Path) -> None:
    _publish(cli, base_url="https://optout.example.com", transport_url="smtp://relay.internal:25")

    own = _settings(cli, tmp_path, base_url="https://staging.example.com", secret_keys=(ENV_KEY,))
    other = _settings(cli, tmp_path)

    assert (own.base_url, own.transport_url) == (
        "https://staging.example.com",
        "smtp://relay.internal:25",
    )
    assert own.signing_keys() == (ENV_KEY,)
    assert other.signing_keys() != (ENV_KEY,)


def test_R3_keys_and_a_relay_password_from_the_environment_stay_out_of_the_database(
    cli: Cli, tmp_path: Path
) -> None:
    _publish(
        cli, secret_keys=(ENV_KEY,), transport_url="smtp://mailer:s3cret-pass@relay.internal:587"
    )

    stored = _stored(cli)
    assert ENV_KEY not in stored
    assert "s3cret-pass" not in stored
    assert "relay.internal:587" in stored
    with pytest.raises(InvalidInput, match=r"OPTOUT_SECRET_KEYS.*OPTOUT_TRANSPORT_URL"):
        _settings(cli, tmp_path)
    with pytest.raises(InvalidInput, match="OPTOUT_TRANSPORT_URL") as refused:
        _settings(cli, tmp_path, secret_keys=(ENV_KEY,))
    assert "OPTOUT_SECRET_KEYS" not in str(refused.value)
    assert _settings(
        cli, tmp_path, secret_keys=(ENV_KEY,), transport_url="smtp://mailer:pw@relay.internal:587"
    ).signing_keys() == (ENV_KEY,)
    worker = cli.run("worker", "--once")
    assert worker.exit_code != 0
    assert "OPTOUT_SECRET_KEYS" in worker.stderr + worker.stdout


def test_R3_a_worker_never_signs_with_other_keys_than_the_web_service(
    cli: Cli, tmp_path: Path
) -> None:
    stored = _settings(cli, tmp_path).signing_keys()  # the web service ran on stored keys
    _publish(cli, secret_keys=(ENV_KEY,))  # then was given keys of its own

    with pytest.raises(InvalidInput, match="OPTOUT_SECRET_KEYS"):
        _settings(cli, tmp_path)
    assert _settings(cli, tmp_path, secret_keys=(ENV_KEY,)).signing_keys() == (ENV_KEY,)

    _publish(cli)  # and runs on the stored keys again
    assert _settings(cli, tmp_path).signing_keys() == stored


def _link_keys_row(cli: Cli) -> str | None:
    s = t.deployment_settings
    value = cli.scalar(sa.select(s.c.value).where(s.c.name == deployment.SIGNING_KEYS))
    return None if value is None else str(value)


def test_R3_link_keys_are_kept_encrypted_in_the_database_never_in_clear(
    cli: Cli, tmp_path: Path
) -> None:
    web = _settings(cli, tmp_path / "web", encryption_keys=(ENCRYPTION_KEY,))
    (key,) = web.signing_keys()

    stored = _stored(cli)
    assert key not in stored
    row = _link_keys_row(cli)
    assert row is not None
    assert row.startswith("gAAAAA")  # a Fernet token
    worker = _settings(cli, tmp_path / "worker", encryption_keys=(ENCRYPTION_KEY,))
    assert worker.signing_keys() == (key,)
    with pytest.raises(InvalidInput, match="OPTOUT_ENCRYPTION_KEYS"):
        _settings(cli, tmp_path / "without-keys")
    assert not (tmp_path / "without-keys" / "var" / "secret_keys").exists()


def test_R3_without_encryption_keys_link_keys_stay_in_a_key_file_of_the_services_user(
    cli: Cli, tmp_path: Path
) -> None:
    web = _settings(cli, tmp_path / "web")
    (key,) = web.signing_keys()

    kept = tmp_path / "web" / "var" / "secret_keys"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert key in kept.read_text()
    assert key not in _stored(cli)
    assert _link_keys_row(cli) is None
    assert _settings(cli, tmp_path / "web").signing_keys() == (key,)  # read back, same file
    with pytest.raises(InvalidInput, match="OPTOUT_SECRET_KEYS"):
        _settings(cli, tmp_path / "elsewhere")  # refuses rather than sign other links
    assert not (tmp_path / "elsewhere" / "var" / "secret_keys").exists()


OLD_KEY = "stored-in-clear-by-an-earlier-version-0123"


def _stored_in_clear(cli: Cli) -> None:
    engine = create_engine(cli.url)
    try:
        with engine.begin() as db:
            db.execute(
                t.deployment_settings.insert().values(
                    name=deployment.SIGNING_KEYS,
                    value=json.dumps([OLD_KEY]),
                    updated_at=cli.now,
                )
            )
    finally:
        engine.dispose()


def test_R3_link_keys_stored_in_clear_before_are_encrypted_in_place(
    cli: Cli, tmp_path: Path
) -> None:
    _stored_in_clear(cli)
    token = UnsubscribeTokens((OLD_KEY,)).issue(workspace_id=1, person_id=7, email="ann@acme.com")

    web = _settings(cli, tmp_path / "web", encryption_keys=(ENCRYPTION_KEY,))

    assert web.signing_keys() == (OLD_KEY,)
    assert OLD_KEY not in _stored(cli)
    assert UnsubscribeTokens(web.signing_keys()).read(token).person_id == 7  # links sent work
    again = _settings(cli, tmp_path / "worker", encryption_keys=(ENCRYPTION_KEY,))
    assert again.signing_keys() == (OLD_KEY,)


def test_R3_link_keys_stored_in_clear_before_move_to_the_key_file_without_encryption_keys(
    cli: Cli, tmp_path: Path
) -> None:
    _stored_in_clear(cli)
    kept = tmp_path / "web" / "var" / "secret_keys"
    kept.parent.mkdir(parents=True)
    kept.write_text("# an older file\nan-older-key-from-the-key-file-0123456\n")

    web = _settings(cli, tmp_path / "web")

    assert web.signing_keys() == (OLD_KEY, "an-older-key-from-the-key-file-0123456")
    assert OLD_KEY not in _stored(cli)
    assert _link_keys_row(cli) is None
    assert kept.stat().st_mode & 0o777 == 0o600
    lines = [line for line in kept.read_text().splitlines() if not line.startswith("#")]
    assert lines == [OLD_KEY, "an-older-key-from-the-key-file-0123456"]
    assert _settings(cli, tmp_path / "web").signing_keys() == (
        OLD_KEY,
        "an-older-key-from-the-key-file-0123456",
    )
