"""From the outbox to an opt-out in a browser: the worker sends an email, the person
follows its unsubscribe link, confirms, and their person page shows the opt-out (R3)."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from email import policy
from email.message import EmailMessage
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.sending.transports import OutboxTransport
from optout.sending.worker import Mailer, run_once
from optout.services.sequences.definitions import Step
from tests.browser.conftest import KEYS, App
from tests.factories import World

STEPS = (
    Step("email", subject="Hello {{ person.first_name }}", body_text="A first note."),
    Step("wait", wait_seconds=2 * 86400),
    Step("email", subject="Following up", body_text="A second note."),
)


def _unsubscribe_link(message: EmailMessage) -> str:
    """The https (here: loopback http) URI of the message's List-Unsubscribe header."""
    header = str(message["List-Unsubscribe"])
    found = re.search(r"<(https?://[^>]+)>", header)
    assert found, header
    return found.group(1)


def test_R3_unsubscribe_link_from_a_sent_email_opts_the_person_out(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
    tmp_path: Path,
) -> None:
    with web_world() as world:
        ann = world.person("ann@acme.com", company="acme.com", first_name="Ann")
        sequence_id = world.sequence("Outbound", steps=STEPS)
        world.enroll(sequence_id, [ann])
    app = open_app(world)
    page = app.page

    mailer = Mailer(
        Settings(database_url="unused://", secret_keys=KEYS, base_url=app.base),
        OutboxTransport(tmp_path),
    )
    assert run_once(engine, mailer=mailer, now=world.now).sent == 1
    [sent] = sorted(tmp_path.glob("*.eml"))
    message = email.message_from_bytes(sent.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "Ann <ann@acme.com>"
    link = _unsubscribe_link(message)
    assert link.startswith(f"{app.base}/u/")
    assert link in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    page.goto(link)
    expect(page.locator("h1")).to_contain_text("Unsubscribe from")
    app.shot("confirm page")
    page.click("button:has-text('Unsubscribe')")
    expect(page.locator("h1")).to_have_text("You are unsubscribed")
    app.shot("unsubscribed")

    app.sign_in()
    person = app.visit(f"/people/{ann}", "person page")
    expect(person.locator("h1 .badge.opted_out")).to_have_text("opted out")
    expect(person.locator("#opt-out")).to_contain_text("via unsubscribe link")
    expect(person.locator("#enrollments tbody tr")).to_contain_text("opted out")
    expect(person.locator("#history")).to_contain_text("Email sent")
    expect(person.locator("#history")).to_contain_text("Opted out")
