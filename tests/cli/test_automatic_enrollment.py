"""A sequence's automatic enrollment from the command line (R41): on by default for a new
sequence with an audience, switched with `optout sequence auto-enroll`, shown by
`optout sequence show`; explain says whether the person will be enrolled automatically."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli

STEPS_TOML = """
[[steps]]
kind = "email"
subject = "Hello"
text = "Hi."
"""


def test_R41_cli_creates_switches_and_shows_automatic_enrollment(cli: Cli, tmp_path: Path) -> None:
    with cli.seed() as world:
        world.ruleset("Default")
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.audience("CTOs", filter='person.title contains "cto"')
    steps = tmp_path / "steps.toml"
    steps.write_text(STEPS_TOML)
    common = ("--ruleset", "Default", "--from", "sam@acme-sales.com", "--steps", str(steps))
    made = cli.ok("sequence", "create", "Tech", *common, "--audience", "CTOs")
    assert "it enrolls its audience automatically" in made.output.replace("\n", " ")
    cli.ok("sequence", "create", "Tech by hand", *common, "--audience", "CTOs",
           "--no-enroll-automatically")  # fmt: skip
    cli.ok("sequence", "create", "No audience", *common)
    refused = cli.run("sequence", "create", "Bad", *common, "--enroll-automatically")
    assert refused.exit_code == 2
    assert "needs --audience" in refused.output

    shown = cli.json("sequence", "show", "Tech")
    assert (shown["enroll_automatically"], shown["enrolled_automatically_last_day"]) == (True, 0)
    assert cli.json("sequence", "show", "Tech by hand")["enroll_automatically"] is False
    assert cli.json("sequence", "show", "No audience")["enroll_automatically"] is False
    text = cli.ok("sequence", "show", "Tech").output.replace("\n", " ")
    assert "Enrolls automatically: on; 0 enrolled automatically in the last day." in text

    explained = cli.ok("explain", "ann@acme.com", "--sequence", "Tech").output.replace("\n", " ")
    assert "This sequence enrolls automatically: ann@acme.com will be enrolled automatically." in (
        explained
    )

    dated = cli.ok(
        "sequence", "auto-enroll", "Tech by hand", "--on",
        "--from", "2030-01-01 09:00", "--until", "2030-02-01T18:00",
    )  # fmt: skip
    assert "enrolls automatically (on from 2030-01-01 09:00 UTC until 2030-02-01 18:00 UTC)" in (
        dated.output.replace("\n", " ")
    )
    shown = cli.json("sequence", "show", "Tech by hand")
    assert shown["enroll_automatically_from"].startswith("2030-01-01")
    assert shown["enroll_automatically_until"].startswith("2030-02-01")

    backwards = cli.run(
        "sequence", "auto-enroll", "Tech", "--on", "--from", "2030-02-01", "--until", "2030-01-01"
    )
    assert backwards.exit_code == 2
    assert "must come after its start" in backwards.output
    garbled = cli.run("sequence", "auto-enroll", "Tech", "--on", "--from", "next tuesday")
    assert garbled.exit_code == 2
    assert "--from 'next tuesday' is not a date and time" in garbled.output
    no_audience = cli.run("sequence", "auto-enroll", "No audience", "--on")
    assert no_audience.exit_code == 2
    assert "has no audience" in no_audience.output

    off = cli.ok("sequence", "auto-enroll", "Tech", "--off")
    assert "Tech no longer enrolls automatically. Nobody was unenrolled." in off.output
    assert cli.json("sequence", "auto-enroll", "Tech", "--off") == {
        "sequence": "Tech",
        "enroll_automatically": False,
        "from": None,
        "until": None,
    }
