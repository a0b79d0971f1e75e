"""A sequence's sending days and hours from the command line (R38)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli

STEPS_TOML = """
[[steps]]
kind = "email"
subject = "Hello"
text = "Hi."

[[steps]]
kind = "wait"
days = 2

[[steps]]
kind = "email"
text = "Following up."
"""


def test_R38_cli_sets_shows_and_changes_a_sequence_schedule(cli: Cli, tmp_path: Path) -> None:
    with cli.seed() as world:
        world.ruleset("Default")
    steps = tmp_path / "steps.toml"
    steps.write_text(STEPS_TOML)
    base = ("sequence", "create")
    common = ("--ruleset", "Default", "--from", "sam@acme-sales.com", "--steps", str(steps))
    cli.ok(*base, "Weekdays", *common, "--hours", "09:00-17:00", "--business-day-waits")
    cli.ok(*base, "Always", *common)

    assert cli.json("sequence", "show", "Weekdays")["schedule"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
        "business_day_waits": True,
    }
    assert "Sends Mon-Fri 09:00-17:00, waits count sending days only, in each recipient's" in (
        cli.ok("sequence", "show", "Weekdays").output.replace("\n", " ")
    )
    assert "Sends at any hour." in cli.ok("sequence", "show", "Always").output

    changed = cli.ok("sequence", "schedule", "Always", "--days", "sat,sun", "--hours", "10-12")
    assert "Always now sends Sat, Sun 10:00-12:00" in changed.output.replace("\n", " ")
    assert cli.json("sequence", "show", "Always")["schedule"]["days"] == ["sat", "sun"]

    refused = cli.run("sequence", "schedule", "Always", "--hours", "17:00-09:00")
    assert refused.exit_code != 0
    assert "start before they end" in refused.output
    refused = cli.run("sequence", "schedule", "Always", "--days", "someday")
    assert refused.exit_code != 0
    assert "not days of the week" in refused.output
