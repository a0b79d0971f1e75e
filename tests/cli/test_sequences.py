"""Sequence, enrollment and worker commands (R8, R10, R11, R17, R26, R28, R30)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import sqlalchemy as sa

from optout.db import tables as t
from tests.cli.conftest import Cli

STEPS_TOML = """
[[steps]]
kind = "email"
subject = "Hello {{ person.first_name }}"
text = "Hi {{ person.first_name }}, a question about {{ company.name }}."

[[steps]]
kind = "wait"
days = 3

[[steps]]
kind = "email"
subject = "Following up"
text = "Any thoughts?"
"""


def _setup(cli: Cli, tmp_path: Path) -> Path:
    with cli.seed() as world:
        world.company("acme.com", "Acme Corp")
        world.person("ann@acme.com", company="acme.com", first_name="Ann", title="CTO")
        world.person("ben@acme.com", company="acme.com", first_name="Ben", title="VP Sales")
        world.person("cat@globex.io", company="globex.io", first_name="Cat", title="CTO")
        world.audience("CTOs", filter='person.title = "cto"')
    steps = tmp_path / "steps.toml"
    steps.write_text(STEPS_TOML)
    cli.ok("ruleset", "create", "Careful", "--cooldown-days", "7", "--max-per-company", "1")
    cli.ok(
        "sequence",
        "create",
        "Intro",
        "--ruleset",
        "Careful",
        "--from",
        "Sam <sam@acme-sales.com>",
        "--steps",
        str(steps),
        "--audience",
        "CTOs",
    )
    return steps


def test_R26_cli_sequence_create_show_and_worker_sends_to_outbox(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    enrolled = cli.json("enroll", "--sequence", "Intro", "ann@acme.com", "cat@globex.io")
    assert enrolled == {
        "requested": 2,
        "enrolled": 2,
        "blocked": 0,
        "refused": [],
        "refused_total": 0,
    }
    shown = cli.json("sequence", "show", "Intro")
    assert [s["kind"] for s in shown["steps"]] == ["email", "wait", "email"]
    assert shown["enrollments"] == {"not_started": 2}
    assert shown["queued_emails"] == 2
    outbox = tmp_path / "outbox"
    preview = cli.json("worker", "--dry-run")
    assert sorted(m["to"] for m in preview["would_send"]) == ["ann@acme.com", "cat@globex.io"]
    assert not outbox.exists() or not list(outbox.iterdir())
    result = cli.run(
        "worker",
        "--once",
        "--json",
        OPTOUT_TRANSPORT_URL=f"outbox:{outbox}",
        OPTOUT_SECRET_KEYS="cli-test-secret-key-0123456789",
    )
    assert result.exit_code == 0, result.stderr
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]
    assert sorted(m["Subject"] for m in messages) == ["Hello Ann", "Hello Cat"]
    assert all(m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in messages)
    assert cli.json("sequence", "show", "Intro")["enrollments"] == {"in_progress": 2}


def test_R11_cli_pause_resume_archive_unenroll_nobody(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    cli.ok("enroll", "--sequence", "Intro", "ann@acme.com")
    assert "Nobody was unenrolled" in cli.ok("sequence", "pause", "Intro").stdout
    assert cli.json("worker", "--dry-run")["would_send"] == []
    assert cli.json("sequence", "show", "Intro")["enrollments"] == {"not_started": 1}
    cli.ok("sequence", "resume", "Intro")
    assert len(cli.json("worker", "--dry-run")["would_send"]) == 1
    cli.ok("sequence", "archive", "Intro")
    refused = cli.run("sequence", "resume", "Intro")
    assert refused.exit_code == 2
    assert "archived" in refused.stderr


def test_R17_cli_enroll_by_filter_goes_through_exclusions(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    cli.ok(
        "exclusion",
        "add",
        "Globex",
        "--level",
        "company",
        "--filter",
        "company.domain = globex.io",
        "--confirm",
    )
    result = cli.json("enroll", "--sequence", "Intro", "--filter", 'person.title = "cto"')
    assert (result["requested"], result["enrolled"], result["blocked"]) == (2, 1, 1)
    [refused] = result["refused"]
    assert refused["code"] == "exclusion"
    assert refused["exclusion"] == "Globex"
    assert refused["reason"] == "excluded by 'Globex'"


def test_R30_cli_refresh_and_not_enrolled_view(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    cli.ok(
        "exclusion",
        "add",
        "Globex",
        "--level",
        "company",
        "--filter",
        "company.domain = globex.io",
        "--confirm",
    )
    done = cli.json("sequence", "refresh", "Intro")
    assert done == {"members": 2, "enrolled": 1, "skipped": 1}
    rows = cli.json("not-enrolled", "Intro")
    assert [(r["email"], r["reason"]) for r in rows] == [("cat@globex.io", "excluded by 'Globex'")]
    assert "excluded by 'Globex'" in cli.ok("not-enrolled", "Intro").stdout


def test_R10_cli_bulk_unenroll_by_status_and_R8_single_unenroll(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    cli.ok("ruleset", "create", "Open")
    steps = tmp_path / "steps.toml"
    cli.ok(
        "sequence",
        "create",
        "Broad",
        "--ruleset",
        "Open",
        "--from",
        "sam@acme-sales.com",
        "--steps",
        str(steps),
    )
    cli.ok("enroll", "--sequence", "Broad", "ann@acme.com", "ben@acme.com", "cat@globex.io")
    cli.ok("enroll", "--sequence", "Intro", "cat@globex.io")
    single = cli.json("unenroll", "ann@acme.com", "--sequence", "Broad")
    assert single == {"enrollments_ended": 1, "emails_cancelled": 1}
    bulk = cli.json("unenroll", "--sequence", "Broad", "--status", "not_started")
    assert bulk == {"enrollments_ended": 2, "emails_cancelled": 2}
    assert cli.json("sequence", "show", "Intro")["enrollments"] == {"not_started": 1}
    bad = cli.run("unenroll", "--status", "finished")
    assert bad.exit_code == 2


def test_R34_cli_refuses_a_from_address_with_a_line_break(cli: Cli, tmp_path: Path) -> None:
    with cli.seed():
        pass
    steps = tmp_path / "steps.toml"
    steps.write_text(STEPS_TOML)
    cli.ok("ruleset", "create", "Careful")
    for field, sender in (
        ("--from", "sam@acme-sales.com\r\nBcc: everyone@victim.example"),
        ("--reply-to", "sam@acme-sales.com\nX-Evil: 1"),
    ):
        senders = {"--from": "sam@acme-sales.com", field: sender}
        result = cli.run(
            "sequence", "create", "Intro", "--ruleset", "Careful", "--steps", str(steps),
            *[part for pair in senders.items() for part in pair],
        )  # fmt: skip
        assert result.exit_code != 0, result.stdout
        assert "line break" in result.stdout + result.stderr
    assert cli.scalar(sa.select(sa.func.count()).select_from(t.sequences)) == 0
