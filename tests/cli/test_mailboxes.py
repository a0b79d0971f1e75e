"""`optout mailbox ...` on each database (R37, R40): add, list, edit, pause, resume and
remove sender mailboxes, in the admin's words and as JSON."""

from __future__ import annotations

import json

import sqlalchemy as sa

from optout.cli import app
from optout.crypto import new_key
from optout.db import tables as t
from tests.cli.conftest import STEPS, Cli


def test_R37_mailbox_commands_add_list_edit_pause_resume_and_remove(cli: Cli) -> None:
    with cli.seed() as world:
        sequence = world.sequence(steps=STEPS)
        world.enroll(sequence, [world.person("lead@client.com")])
    added = cli.json(
        "mailbox", "add", "Ann@Acme-Sales.com", "--name", "Ann Lee", "--daily-limit", "30",
        "--time-zone", "Europe/Berlin",
    )  # fmt: skip
    assert (added["address"], added["daily_limit"], added["min_gap_seconds"]) == (
        "ann@acme-sales.com",
        30,
        90,
    )
    shown = cli.ok("mailbox", "list").stdout
    assert "Ann Lee <ann@acme-sales.com>" in shown
    assert "0 of 30" in shown
    assert "shared relay" in shown

    bad = cli.run("mailbox", "edit", "ann@acme-sales.com", "--time-zone", "Berlin/Mars")
    assert bad.exit_code == 2
    assert "not a time zone" in bad.stderr

    key = new_key()
    edited = cli.runner.invoke(
        app,
        ["mailbox", "edit", "ann@acme-sales.com", "--smtp", "smtp://ann@mail.acme-sales.com:587",
         "--gap", "120", "--json"],
        env=cli.env(OPTOUT_ENCRYPTION_KEYS=key, OPTOUT_MAILBOX_SMTP_PASSWORD="s3cret-pw"),
    )  # fmt: skip
    assert edited.exit_code == 0, edited.stderr
    assert "s3cret-pw" not in edited.stdout
    changed = json.loads(edited.stdout)
    assert (changed["transport"], changed["has_password"], changed["min_gap_seconds"]) == (
        "smtp://ann@mail.acme-sales.com:587",
        True,
        120,
    )
    stored = cli.scalar(
        sa.select(t.mailboxes.c.smtp_password).where(t.mailboxes.c.id == changed["id"])
    )
    assert stored
    assert "s3cret-pw" not in stored

    paused = cli.json("mailbox", "pause", "ann@acme-sales.com", "--reason", "new domain")
    assert (paused["status"], paused["pause_reason"]) == ("paused", "new domain")
    assert "paused: new domain" in cli.ok("mailbox", "list").stdout
    assert cli.json("mailbox", "resume", "ann@acme-sales.com")["status"] == "active"

    in_use = cli.run("mailbox", "remove", "sam@acme-sales.com")
    assert in_use.exit_code == 1
    assert "1 active enrollment(s) send from sam@acme-sales.com" in in_use.stderr
    removed = cli.ok("mailbox", "remove", "sam@acme-sales.com", "--move-to", "ann@acme-sales.com")
    assert "1 enrollment(s) now send from ann@acme-sales.com" in removed.stdout
    assert [m["address"] for m in cli.json("mailbox", "list")] == ["ann@acme-sales.com"]


def test_R40_mailbox_breaker_shows_and_changes_the_workspace_s_lines(cli: Cli) -> None:
    with cli.seed():
        pass
    shown = cli.ok("mailbox", "breaker").stdout
    assert "above 5.0% hard bounces or 0.1% spam complaints of its last 200 sends" in shown
    changed = cli.json("mailbox", "breaker", "--bounce-rate", "0.08")
    assert changed == {
        "bounce_pause_rate": 0.08,
        "complaint_pause_rate": 0.001,
        "domain_complaint_pause_rate": 0.003,
    }
    bad = cli.run("mailbox", "breaker", "--complaint-rate", "3")
    assert bad.exit_code == 2
    assert "the complaint line must be a share above 0 and at most 1" in bad.stderr
