"""`exclusion edit --level` from the command line: a change that stops the rule covering
people asks for --confirm, names how many and why, and changes nothing until then (R12,
R22)."""

from __future__ import annotations

from optout.services.directory import companies
from tests.cli.conftest import STEPS, Cli


def test_R12_R22_cli_level_change_dropping_a_linked_company_needs_confirm(cli: Cli) -> None:
    with cli.seed() as world:
        parent = world.company("acme.com", "Acme")
        child = world.company("acme-labs.io", "Acme Labs")
        companies.link(
            world.db, workspace_id=world.ws, parent_id=parent, child_id=child, now=world.now
        )
        world.person("k@acme.com", company="acme.com")
        world.person("l@acme-labs.io", company="acme-labs.io")
        world.sequence("Outbound", steps=STEPS)
        world.exclusion("Acme group", "company", "company.domain in (acme.com)")

    def allowed() -> bool:
        answer = cli.json("explain", "l@acme-labs.io", "--sequence", "Outbound")
        return bool(answer["allowed"])

    assert allowed() is False
    refused = cli.run("exclusion", "edit", "Acme group", "--level", "people")
    assert refused.exit_code == 2
    assert "stops it covering 1 person it covers now (l@acme-labs.io)" in refused.stderr
    assert "--confirm" in refused.stderr
    assert cli.json("exclusion", "show", "Acme group")["exclusion"]["level"] == "company"
    assert allowed() is False

    cli.ok("exclusion", "edit", "Acme group", "--level", "people", "--confirm")
    assert cli.json("exclusion", "show", "Acme group")["exclusion"]["level"] == "people"
    assert allowed() is True
