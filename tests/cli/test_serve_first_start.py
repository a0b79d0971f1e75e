"""The first start of `optout serve` on a fresh installation, with neither
OPTOUT_ENCRYPTION_KEYS nor OPTOUT_BASE_URL: it makes a key file readable by its own user
only, so a CRM token can be saved from the browser with no restart, and the links it
sends, previews and shows point at the port it was started on (R3, R31)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from optout.config import encryption_key_file_from
from tests.cli.conftest import WORKSPACE, Cli, wait_until_serving
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.web.conftest import csrf_token_in, serving

PASSWORD = "correct-horse-battery"
TOKEN = "pat-na1-first-start-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hubspot() -> Iterator[HubSpot]:
    emulator = HubSpot(token=TOKEN, clock=FakeClock())
    with serving(emulator.app) as url:
        emulator.url = url
        yield emulator


def _signed_in(base: str) -> httpx.Client:
    browser = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
    form = browser.get("/login").text
    answer = browser.post(
        "/login",
        data={
            "workspace": WORKSPACE,
            "email": "ops@acme.com",
            "password": PASSWORD,
            "csrf_token": csrf_token_in(form),
        },
    )
    assert answer.status_code == 200
    return browser


def test_R31_first_start_makes_a_private_key_file_and_links_use_the_port_served_on(
    cli: Cli, tmp_path: Path, hubspot: HubSpot
) -> None:
    with cli.seed() as world:
        anna = world.person("anna@acme.com", first_name="Anna")
        outbound = world.sequence()
        world.enroll(outbound, [anna])
    assert cli.run(
        "user", "add", "ops@acme.com", "--role", "admin", "--password-env", "SECRET",
        SECRET=PASSWORD,
    ).exit_code == 0  # fmt: skip
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "outbox"
    unset = ("OPTOUT_ENCRYPTION_KEYS", "OPTOUT_ENCRYPTION_KEY_FILE", "OPTOUT_BASE_URL")
    env = {
        **{k: v for k, v in os.environ.items() if k not in unset},
        **cli.env(),
        "OPTOUT_TRANSPORT_URL": f"outbox:{outbox}",
        "OPTOUT_CRM_ALLOWED_HOSTS": "127.0.0.1",
    }
    key_file = (tmp_path / encryption_key_file_from(env)).resolve()
    assert not key_file.exists()
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
        wait_until_serving(server, base)
        # The key file is there, readable and writable by the service's user only.
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        browser = _signed_in(base)
        form = browser.get("/crm/hubspot")
        assert str(key_file) in form.text
        assert "Back this file up with the database" in form.text
        saved = browser.post(
            "/crm/hubspot",
            data={
                "csrf_token": csrf_token_in(form.text),
                "base_url": hubspot.url,
                "token": TOKEN,
                "webhook_secret": "",
            },
        )
        assert saved.status_code == 200, saved.text
        assert "HubSpot connection saved. Saved, encrypted: access token." in saved.text
        assert TOKEN not in saved.text
        assert TOKEN not in key_file.read_text()
        assert f"{base}/crm/webhooks/hubspot/" in saved.text
        tested = browser.post("/crm/hubspot/test", data={"csrf_token": csrf_token_in(saved.text)})
        assert "Connected: HubSpot accepted the credentials" in tested.text
        assert ">connected</span>" in tested.text

        dashboard = browser.get("/").text
        assert f"<code>{base}</code>" in dashboard
        assert "Links in emails will not open for recipients." in dashboard

        deadline = time.monotonic() + 60
        while not list(outbox.glob("*.eml")):
            assert time.monotonic() < deadline, "the worker sent nothing"
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert str(key_file) in output
    sent = next(outbox.glob("*.eml")).read_text()
    assert f"{base}/u/" in sent
    assert "127.0.0.1:8000" not in sent
