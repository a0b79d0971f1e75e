from __future__ import annotations

from optout.eligibility import Status
from tests.factories import World


def test_R12_company_exclusion_blocks_everyone_at_company(world: World) -> None:
    world.company("acme.com", "Acme")
    alice = world.person("alice@acme.com", company="acme.com", title="CTO")
    bob = world.person("bob@globex.io", company="globex.io", title="VP Sales")
    seq = world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    result = world.enroll(seq, [alice, bob])
    assert (result.requested, result.enrolled) == (2, 1)
    assert world.status_of(seq, alice) is None
    assert world.status_of(seq, bob) == "not_started"
    explanation = world.explain("alice@acme.com")
    assert not explanation.decision.allowed
    reason = explanation.decision.primary_reason
    assert reason is not None and reason.status is Status.BLOCK
    assert "Customers" in reason.summary
