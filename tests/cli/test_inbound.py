"""`optout inbound ...` from the command line, on both databases: process a file, list
what came in (unmatched ones included), and the SMTP listener as a real process."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from tests.cli.conftest import Cli
from tests.inbound.helpers import KEYS, corpus, readdress, reply, sent_world
from tests.inbound.imap_server import Dovecot, dovecot_server
from tests.sending.smtp_server import HOST, free_port


def _seed(cli: Cli) -> dict[str, str]:
    with cli.seed() as world:
        return sent_world(world).message_ids


def _env(cli: Cli) -> dict[str, str]:
    """The unsubscribe-token keys the sending side used (for mailto and VERP tokens)."""
    return {"OPTOUT_SECRET_KEYS": ",".join(KEYS)}


def test_R5_process_a_file_and_list_what_came_in(cli: Cli, tmp_path: Path) -> None:
    message_ids = _seed(cli)
    answer = tmp_path / "answer.eml"
    answer.write_bytes(
        readdress(
            corpus("reply_outlook.eml"), From="Ben <ben@acme.com>", In_Reply_To=message_ids["ben"]
        )
    )
    stranger = tmp_path / "stranger.eml"
    stranger.write_bytes(reply(sender="who@nowhere.example", body="Hello?"))
    done = cli.run("inbound", "process", str(answer), "--json", **_env(cli))
    assert done.exit_code == 0, done.stderr
    assert '"outcome": "replied"' in done.stdout
    out = cli.run("inbound", "process", str(stranger), **_env(cli)).stdout
    assert "unmatched: answers none of our emails" in out
    again = cli.run("inbound", "process", str(answer), **_env(cli)).stdout
    assert "seen before: nothing done again" in again
    listed = cli.run("inbound", "list", **_env(cli)).stdout
    assert "ben@acme.com" in listed
    assert "who@nowhere.example" in listed
    unmatched = cli.run("inbound", "list", "--unmatched", **_env(cli)).stdout
    assert "who@nowhere.example" in unmatched
    assert "ben@acme.com" not in unmatched


def test_R34_process_refuses_what_is_no_message(cli: Cli, tmp_path: Path) -> None:
    _seed(cli)
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\x00\xff not mail")
    result = cli.run("inbound", "process", str(garbage), **_env(cli))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: not a MIME message")
    missing = cli.run("inbound", "process", str(tmp_path / "nope.eml"), **_env(cli))
    assert (missing.exit_code, missing.stderr.startswith("error: cannot read")) == (2, True)
    assert cli.scalar(sa.select(sa.func.count()).select_from(t.inbound_messages)) == 0


def test_R5_process_a_maildir_several_messages_to_a_transaction(cli: Cli, tmp_path: Path) -> None:
    message_ids = _seed(cli)
    maildir = tmp_path / "Maildir"
    (maildir / "new").mkdir(parents=True)
    (maildir / "cur").mkdir()
    (maildir / "new" / "1.eml").write_bytes(
        reply(sender="ann@acme.com", body="Call me.", in_reply_to=message_ids["ann"])
    )
    (maildir / "new" / "2.eml").write_bytes(b"\x00\xff not mail")
    (maildir / "cur" / "3.eml").write_bytes(
        readdress(corpus("bounce_postfix_dsn.eml"), In_Reply_To=message_ids["ben"])
    )
    done = cli.run("inbound", "process", str(maildir), **_env(cli))
    assert done.exit_code == 2  # one file was no message: said, and the others processed
    assert "not a message we can read: not a MIME message" in done.stdout
    assert "2 message(s) processed, 1 refused" in done.stdout
    assert "reply → replied" in done.stdout
    assert "bounce → bounced" in done.stdout
    rows = cli.scalar(sa.select(sa.func.count()).select_from(t.inbound_messages))
    assert rows == 2
    again = cli.run("inbound", "process", str(maildir / "new" / "1.eml"), str(maildir / "cur"),
                    "--json", **_env(cli))  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert '"processed": 2' in again.stdout
    assert again.stdout.count('"duplicate": true') == 2


def test_R5_smtp_listener_runs_until_sigterm(cli: Cli) -> None:
    message_ids = _seed(cli)
    port = free_port()
    optout = Path(sys.executable).with_name("optout")
    process = subprocess.Popen(
        [str(optout), "inbound", "smtp", "--listen", f"{HOST}:{port}"],
        env={**os.environ, **cli.env(), **_env(cli)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"Listening for inbound mail on {HOST}:")
        with smtplib.SMTP(HOST, port, timeout=10) as client:
            client.sendmail(
                "ann@acme.com",
                ["sam@acme-sales.com"],
                reply(sender="ann@acme.com", body="Yes!", in_reply_to=message_ids["ann"]),
            )
        process.terminate()
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Stopped." in out
    e = t.enrollments
    assert cli.scalar(sa.select(sa.func.count()).where(e.c.status == "replied")) == 1


@pytest.fixture
def imap_server() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


def test_R7_imap_once_from_the_command_line(cli: Cli, imap_server: Dovecot) -> None:
    message_ids = _seed(cli)
    imap_server.append(
        readdress(
            corpus("ooo_exchange_german.eml"), From="ben@acme.com", In_Reply_To=message_ids["ben"]
        )
    )
    args = (
        "inbound",
        "imap",
        "--host",
        HOST,
        "--port",
        str(imap_server.port),
        "--user",
        imap_server.user,
        "--password-env",
        "TEST_IMAP_PASSWORD",
        "--no-ssl",
        "--once",
    )
    result = cli.run(*args, **_env(cli), TEST_IMAP_PASSWORD=imap_server.password)
    assert result.exit_code == 0, result.stderr
    assert "Fetched 1: processed 1" in result.stdout
    assert "auto_reply → auto_reply" in result.stdout
    assert imap_server.unseen() == []
    no_password = cli.run(*args, **_env(cli))
    assert no_password.exit_code == 2
    assert "TEST_IMAP_PASSWORD" in no_password.stderr
