"""A worker on another machine needs only the database URL: the link keys, the web app's
public address and the mail relay come from the database (R3: the links it signs open the
web app's unsubscribe page)."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from optout import deployment
from optout.config import Settings
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.errors import InvalidInput
from optout.sending.tokens import UnsubscribeTokens
from tests.cli.conftest import STEPS, Cli

ENV_KEY = "kept-only-in-the-environment-0123456789"


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each process runs in a folder of its own, as on another machine: no var/secret_keys."""
    for name in ("OPTOUT_SECRET_KEYS", "OPTOUT_BASE_URL", "OPTOUT_TRANSPORT_URL"):
        monkeypatch.delenv(name, raising=False)
    machine = tmp_path / "machine"
    machine.mkdir()
    monkeypatch.chdir(machine)
    return machine


def _settings(cli: Cli, machine: Path, **given: str) -> Settings:
    """What a process started in `machine` with only `given` besides the URL would use."""
    engine = create_engine(cli.url)
    try:
        return deployment.completed(
            Settings(
                database_url=cli.url,
                secret_keys_path=machine / "var" / "secret_keys",
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


def test_R3_a_worker_given_only_the_database_url_signs_links_the_web_app_opens(
    cli: Cli, tmp_path: Path, elsewhere: Path
) -> None:
    outbox = tmp_path / "outbox"
    with cli.seed() as world:
        world.company("acme.com", "Acme Corp")
        ann = world.person("ann@acme.com", company="acme.com", first_name="Ann")
        world.enroll(world.sequence("Intro", steps=STEPS), [ann])
    # The web service was started with its public address and the relay.
    _publish(cli, base_url="https://optout.example.com", transport_url=f"outbox:{outbox}")
    web = _settings(cli, tmp_path / "web-machine")

    result = cli.run("worker", "--once", "--json")

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

    first = _settings(cli, elsewhere)
    second = _settings(cli, tmp_path / "new-machine")

    assert first.signing_keys() == second.signing_keys() == ("the-key-mail-was-signed-with-01234",)


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
