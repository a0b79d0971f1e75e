"""opt-out, clear-opt-out, explain and history from the command line (R1, R29, R33, R35)."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db import tables as t
from optout.services.suppression import optouts
from tests.cli.conftest import ACTOR, STEPS, Cli
from tests.user_text import RAW_FIELD_PATH, admin_unfamiliar


def _seed_customers(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("bob@globex.io", company="globex.io", title="VP Engineering")
        world.exclusion("Customers", "company", "company.domain in (acme.com, initech.com)")
        world.sequence("Outbound", steps=STEPS)


def test_R29_cli_explain_names_blocking_rule(cli: Cli) -> None:
    _seed_customers(cli)
    out = cli.ok("explain", "ann@acme.com", "--sequence", "Outbound").stdout
    first = out.splitlines()[0]
    assert first.startswith("BLOCKED")
    assert "excluded by 'Customers'" in first
    # which condition matched, and the value it saw, in the words of the explain page
    assert "Company domain is one of (acme.com, initech.com) ← acme.com" in out
    assert "✗ block" in out
    assert "✓ pass" in out
    # every check of R16 is listed, in order, by the name a user reads
    checks = [
        "Spam complaint",
        "Hard bounce",
        "Opted out",
        "Ruleset",
        "Exclusion",
        "Already enrolled",
        "cooldown",
    ]
    positions = [out.index(f" {name} ") for name in checks]
    assert positions == sorted(positions)


def test_R29_cli_explain_speaks_of_fields_by_their_labels(cli: Cli) -> None:
    """What `optout explain` prints names fields and operators as the explain page does:
    no filter syntax, no field written as code, whichever check matched."""
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person(
            "cat@globex.io", company="globex.io", title="Head of HR", fields={"tier": "gold"}
        )
        world.person("dan@initech.com", company="initech.com", title="VP Sales")
        world.person("eve@umbrella.io", company="umbrella.io", title="Engineer")
        world.exclusion("Customers", "company", "company.domain in (acme.com, initech.com)")
        world.exclusion(
            "Gold tier HR",
            "people",
            "person.fields.tier = gold and person.title contains any (hr, people)",
        )
        world.audience(
            "Leaders",
            "person.title contains any (cto, head, vp) and person.last_emailed_at is empty",
        )
        world.sequence("Outbound", steps=STEPS, audience="Leaders")

    printed = {
        email: cli.ok("explain", email, "--sequence", "Outbound").stdout
        for email in ("ann@acme.com", "cat@globex.io", "dan@initech.com", "eve@umbrella.io")
    }

    assert "Company domain is one of (acme.com, initech.com) ← acme.com" in printed["ann@acme.com"]
    assert "Tier (custom) is gold ← gold" in printed["cat@globex.io"]
    assert "Job title contains any of (hr, people) ← head of hr" in printed["cat@globex.io"]
    for email, out in printed.items():
        assert RAW_FIELD_PATH.findall(out) == [], (email, out)
        assert admin_unfamiliar(out) == [], (email, out)


def test_R29_cli_explain_allowed_person_and_json(cli: Cli) -> None:
    _seed_customers(cli)
    out = cli.ok("explain", "bob@globex.io", "--sequence", "Outbound").stdout
    assert out.splitlines()[0].startswith("ALLOWED")
    data = cli.json("explain", "ann@acme.com", "--sequence", "Outbound", "--now", "2030-01-02")
    assert data["allowed"] is False
    assert data["at"] == "2030-01-02T00:00:00"
    reason = data["primary_reason"]
    assert reason["check"] == "exclusion"
    assert reason["status"] == "block"
    assert reason["evidence"]["exclusion"] == "Customers"
    assert reason["evidence"]["conditions"][0]["actual"] == "acme.com"
    assert [o["tier"] for o in data["outcomes"]] == sorted(o["tier"] for o in data["outcomes"])


def test_R29_cli_explain_send_purpose_and_bad_arguments(cli: Cli) -> None:
    _seed_customers(cli)
    data = cli.json("explain", "bob@globex.io", "--sequence", "Outbound", "--send")
    assert data["purpose"] == "send"
    both = cli.run("explain", "bob@globex.io", "--sequence", "Outbound", "--send", "--manual")
    assert both.exit_code == 2
    assert both.stderr.startswith("error: --manual")
    missing = cli.run("explain", "nobody@acme.com", "--sequence", "Outbound")
    assert missing.exit_code == 1
    assert missing.stderr == "error: no person with address nobody@acme.com\n"
    no_sequence = cli.run("explain", "bob@globex.io", "--sequence", "Nope")
    assert no_sequence.exit_code == 1
    assert "no sequence named 'Nope'" in no_sequence.stderr
    bad_time = cli.run("explain", "bob@globex.io", "--sequence", "Outbound", "--now", "soon")
    assert bad_time.exit_code == 2


def test_R1_cli_opt_out_ends_enrollments_and_blocks(cli: Cli) -> None:
    with cli.seed() as world:
        ann = world.person("ann@acme.com", company="acme.com")
        world.enroll(world.sequence("Outbound", steps=STEPS), [ann])
    out = cli.ok("opt-out", "Ann@ACME.com", "--reason", "asked on a call").stdout
    assert "Opted out ann@acme.com" in out
    assert "Ended 1 active enrollment(s), cancelled 1 queued email(s)." in out
    data = cli.json("explain", "ann@acme.com", "--sequence", "Outbound")
    assert data["primary_reason"]["check"] == "opted_out"
    assert data["primary_reason"]["evidence"]["actor"] == ACTOR
    again = cli.json("opt-out", "ann@acme.com", "--reason", "again")
    assert again["new"] is False
    s = t.suppressions
    assert cli.scalar(sa.select(s.c.channel).where(s.c.email == "ann@acme.com")) == "manual"


def test_R1_cli_opt_out_of_an_unknown_address_and_bad_input(cli: Cli) -> None:
    cli.ok("init")
    out = cli.ok("opt-out", "later@acme.com", "--reason", "by phone").stdout
    assert "No person has this address yet" in out
    bad = cli.run("opt-out", "not-an-email", "--reason", "x")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: 'not-an-email' is not an email address")
    channel = cli.run("opt-out", "a@acme.com", "--reason", "x", "--channel", "pigeon")
    assert channel.exit_code == 2
    assert "unknown channel 'pigeon'" in channel.stderr


def test_R33_cli_clear_opt_out_needs_reason(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
        world.sequence("Outbound", steps=STEPS)
    cli.ok("opt-out", "ann@acme.com", "--reason", "unsubscribed")
    no_reason = cli.run("clear-opt-out", "ann@acme.com")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.output
    blank = cli.run("clear-opt-out", "ann@acme.com", "--reason", "   ")
    assert blank.exit_code == 2
    assert blank.stderr == "error: clearing an opt-out needs a reason (--reason)\n"
    assert cli.json("explain", "ann@acme.com", "--sequence", "Outbound")["allowed"] is False

    out = cli.ok("clear-opt-out", "ann@acme.com", "--reason", "re-subscribed in writing").stdout
    assert "Cleared the opt-out of ann@acme.com" in out
    assert cli.json("explain", "ann@acme.com", "--sequence", "Outbound")["allowed"] is True
    history = cli.json("history", "ann@acme.com")
    cleared = [e for e in history["events"] if e["kind"] == "opt_out_cleared"]
    assert cleared[0]["actor"] == ACTOR
    assert cleared[0]["detail"]["reason"] == "re-subscribed in writing"
    assert [row["action"] for row in history["ledger"]] == ["added", "cleared"]
    twice = cli.run("clear-opt-out", "ann@acme.com", "--reason", "again")
    assert twice.exit_code == 1
    assert "has not opted out" in twice.stderr


def test_R35_cli_history_in_order(cli: Cli) -> None:
    with cli.seed() as world:
        ann = world.person("ann@acme.com", company="acme.com")
        world.enroll(world.sequence("Outbound", steps=STEPS), [ann])
    cli.ok("opt-out", "ann@acme.com", "--reason", "please stop")
    data = cli.json("history", "ann@acme.com")
    events = data["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "enrolled"
    assert kinds.index("opted_out") < kinds.index("enrollment_ended")
    assert {"email_cancelled", "enrollment_ended"} <= set(kinds)
    moments = [(e["at"], e["id"]) for e in events]
    assert moments == sorted(moments)
    ended = next(e for e in events if e["kind"] == "enrollment_ended")
    assert ended["sequence"] == "Outbound"
    assert ended["rule"] == "opt_out"
    assert ended["actor"] == ACTOR
    table = cli.ok("history", "ann@acme.com").stdout
    # In words, as the person's page shows them: no event kind or actor as the code has it.
    assert table.index("Enrolled") < table.index("Opted out") < table.index("Enrollment ended")
    assert "enrollment_ended" not in table
    assert "email_cancelled" not in table
    assert "(command line)" in table
    assert "@cli" not in table
    assert "Opt-out, bounce and spam complaint ledger" in table
    missing = cli.run("history", "nobody@acme.com")
    assert missing.exit_code == 1


def test_R36_cli_explains_a_complaint_and_clears_it_only_with_a_reason(cli: Cli) -> None:
    with cli.seed() as world:
        world.person("ann@acme.com", company="acme.com")
        world.sequence("Outbound", steps=STEPS)
        optouts.complain(
            world.db,
            workspace_id=world.ws,
            email="ann@acme.com",
            actor="feedback-loop",
            now=world.now,
            reporting_domain="fbl.mail.example",
        )
    out = cli.ok("explain", "ann@acme.com", "--sequence", "Outbound").stdout
    assert out.splitlines()[0].startswith("BLOCKED")
    assert "sent a spam complaint" in out.splitlines()[0]
    assert "fbl.mail.example" in out
    blank = cli.run("clear-opt-out", "ann@acme.com", "--complaint", "--reason", " ")
    assert blank.stderr == "error: clearing a spam complaint needs a reason (--reason)\n"
    not_opted_out = cli.run("clear-opt-out", "ann@acme.com", "--reason", "x")
    assert not_opted_out.exit_code == 1

    cleared = cli.json(
        "clear-opt-out", "ann@acme.com", "--complaint", "--reason", "reported by mistake"
    )

    assert (cleared["kind"], cleared["cleared"]) == ("complaint", True)
    assert cli.json("explain", "ann@acme.com", "--sequence", "Outbound")["allowed"] is True
    table = cli.ok("history", "ann@acme.com").stdout
    assert "spam complaint" in table
    assert "Spam complaint lifted" in table
