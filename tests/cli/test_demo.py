"""`optout demo`: a realistic workspace built through the services, and the tour."""

from __future__ import annotations

import re

from tests.cli.conftest import Cli
from tests.user_text import internal_words

DEMO = ("--workspace", "demo")


def test_cli_demo_builds_tours_and_rebuilds_the_same_workspace(cli: Cli) -> None:
    tour = cli.ok(*DEMO, "demo").stdout
    assert "BLOCKED  dan.reyes@initrode.net may not be enrolled in 'Q4 Outbound'" in tour
    assert "ALLOWED  maya.lopez@brightwave.io may be enrolled in 'Q4 Outbound'" in tour
    assert "near miss: 'Current customers' lists acme.com; acme.co.uk" in tour
    assert not internal_words(tour), "the tour names rule ids or internal check names"
    assert "Exclusions for audience 'People teams'" in tour
    assert "$ optout explain" in tour
    assert "$ optout exclusion preview" in tour
    # Who sends the outbound sequence, within which limits, and in which hours (R37-R39).
    assert "5. Who sends 'Q4 Outbound', and when" in tour
    assert "Alex Morgan <alex@yourteam.example>: at most 40 emails a day" in tour
    assert "Sam Patel <sam@yourteam.example>: at most 30 emails a day" in tour
    assert "Sending hours: Mon-Fri 09:00-17:00" in tour
    assert "$ optout mailbox list" in tour
    shown = " ".join(cli.ok(*DEMO, "sequence", "show", "Q4 Outbound").stdout.split())
    assert "from alex@yourteam.example, sam@yourteam.example" in shown
    assert "Re: A question about your release process (in the thread)" in shown
    assert "Sends Mon-Fri 09:00-17:00" in shown
    counted = re.search(r"(\d+) people at (\d+) companies", tour)
    assert counted is not None
    people, companies = map(int, counted.groups())
    assert people >= 200
    assert 35 <= companies <= 45

    # the commands the tour suggests tell the story back
    cooling = cli.json(*DEMO, "explain", "elena.petrov@brightwave.io", "--sequence", "Q4 Outbound")
    assert cooling["primary_reason"]["check"] == "cooldown"
    colleague = cli.json(*DEMO, "explain", "liam.okafor@northwind.io", "--sequence", "Q4 Outbound")
    assert colleague["primary_reason"]["evidence"]["exclusion"] == "Replied in the last 30 days"
    history = cli.json(*DEMO, "history", "liam.okafor@northwind.io")
    assert [e["kind"] for e in history["events"]][-1] == "enrollment_ended"
    assert cli.json(*DEMO, "exclusion", "preview", "Current customers")["preview"]["near_misses"]
    complainer = re.search(r"optout explain (\S+) --sequence 'Q4 Outbound'\s+# a spam", tour)
    assert complainer is not None
    complained = cli.json(*DEMO, "explain", complainer.group(1), "--sequence", "Q4 Outbound")
    assert complained["primary_reason"]["check"] == "complained"

    # a rebuild starts from scratch and makes the same data again
    again = cli.json(*DEMO, "demo")
    assert (again["counts"]["people"], again["counts"]["companies"]) == (people, companies)
    assert again["blocked"]["allowed"] is False
    assert again["counts"]["complaints"] == 1
    assert again["allowed"]["allowed"] is True
    assert {x["level"] for x in again["exclusions"]} == {"company", "people"}
    assert any(not x["enabled"] for x in again["exclusions"])
    states = {a["state"] for a in again["audience_exclusions"]}
    assert states == {"enforced", "applies", "switched_off", "disabled"}


def test_cli_demo_leaves_a_workspace_it_did_not_make_alone(cli: Cli) -> None:
    cli.ok("init", "--workspace", "demo")
    result = cli.run(*DEMO, "demo")
    assert result.exit_code == 1
    assert "was not made by `optout demo`" in result.stderr
