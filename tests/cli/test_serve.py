"""`optout user`, `optout api-key` and `optout serve`: the first admin and key of a
workspace from the command line, and the service with its send worker in one process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.services import workspaces
from optout.services.access import accounts
from tests.cli.conftest import WORKSPACE, Cli, wait_until_serving

PASSWORD = "correct-horse-battery"


def _sign_in(cli: Cli, email: str, password: str) -> bool:
    engine = create_engine(cli.url)
    try:
        with engine.begin() as db:
            ws = workspaces.get(db, slug=WORKSPACE)
            accounts.sign_in(db, email=email, password=password, workspace_id=ws.id, now=utcnow())
        return True
    except accounts.NotSignedIn:
        return False
    finally:
        engine.dispose()


def test_user_add_creates_an_admin_who_can_sign_in_and_is_idempotent(cli: Cli) -> None:
    with cli.seed():
        pass

    first = cli.run(
        "user", "add", "Admin@Acme.com", "--name", "Ada", "--role", "admin",
        "--password-env", "SECRET", SECRET=PASSWORD,
    )  # fmt: skip
    again = cli.run(
        "user", "add", "admin@acme.com", "--role", "admin", "--password-env", "SECRET",
        SECRET="another-password-1",
    )  # fmt: skip
    members = cli.json("user", "list")

    assert first.exit_code == 0, first.stderr
    assert "Created admin@acme.com" in first.stdout
    assert again.exit_code == 0, again.stderr
    assert "Updated admin@acme.com" in again.stdout
    assert members == [{"user_id": members[0]["user_id"], "email": "admin@acme.com",
                        "name": "Ada", "role": "admin"}]  # fmt: skip
    assert _sign_in(cli, "admin@acme.com", "another-password-1")
    assert not _sign_in(cli, "admin@acme.com", PASSWORD)


def test_user_add_needs_a_password_for_a_new_user(cli: Cli) -> None:
    with cli.seed():
        pass

    missing = cli.run("user", "add", "new@acme.com")
    empty = cli.run("user", "add", "new@acme.com", "--password-env", "NOPE_UNSET_VAR")
    short = cli.run("user", "add", "new@acme.com", "--password-env", "SECRET", SECRET="short")

    for result in (missing, empty, short):
        assert result.exit_code == 2, result.stdout
    assert "--password-env" in missing.stderr
    assert "at least 10 characters" in short.stderr
    assert cli.scalar(sa.select(sa.func.count()).select_from(t.users)) == 0


def test_api_key_create_prints_a_key_that_works_once(cli: Cli) -> None:
    with cli.seed():
        pass

    made = cli.json("api-key", "create", "bridge", "--role", "member")
    listed = cli.json("api-key", "list")
    revoked = cli.run("api-key", "revoke", str(made["id"]))

    assert made["key"].startswith("ok_")
    assert made["role"] == "member"
    assert [(k["name"], k["role"]) for k in listed] == [("bridge", "member")]
    assert made["key"] not in str(listed)
    assert revoked.exit_code == 0
    engine = create_engine(cli.url)
    try:
        with engine.begin() as db, pytest.raises(accounts.NotSignedIn):
            accounts.api_key_principal(db, key=made["key"], now=utcnow())
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_the_api_and_the_send_worker(cli: Cli, tmp_path: Path) -> None:
    with cli.seed() as world:
        anna = world.person("anna@acme.com", first_name="Anna")
        outbound = world.sequence()
        world.enroll(outbound, [anna])
    key = cli.json("api-key", "create", "ops", "--role", "admin")["key"]
    assert cli.run(
        "user", "add", "ops@acme.com", "--role", "admin", "--password-env", "SECRET",
        SECRET=PASSWORD,
    ).exit_code == 0  # fmt: skip
    port = _free_port()
    outbox = tmp_path / "outbox"
    env = {
        **os.environ,
        **cli.env(),
        "OPTOUT_TRANSPORT_URL": f"outbox:{outbox}",
        "OPTOUT_SECRET_KEYS": "serve-test-secret-key-0123456789",
    }
    command = [str(Path(sys.executable).parent / "optout"), "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--poll", "0.2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(server, base)
        deadline = time.monotonic()
        people = httpx.get(f"{base}/api/v1/people", headers={"Authorization": f"Bearer {key}"})
        assert people.status_code == 200
        assert [p["email"] for p in people.json()["items"]] == ["anna@acme.com"]
        while not list(outbox.glob("*.eml")):
            assert time.monotonic() < deadline + 30, "the worker sent nothing"
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert f"{base}/login" in output
    assert "ops@acme.com (admin)" in output
    assert "worker on" in output
    sent = next(outbox.glob("*.eml")).read_text()
    assert "anna@acme.com" in sent
