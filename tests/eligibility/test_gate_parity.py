"""The send-time gate answers as `decide()` does (R28, R16).

The worker stops an email with `Gate.first_block`, which stops at the first blocking check;
explain shows `decide()`, which runs every check. On random worlds (the ones of the SQL
parity test: exclusions at both levels with random toggles, rulesets with exclusions on or
off, audiences with switch-offs, opt-outs, bounces, complaints, enrollment histories,
linked companies), for every person and the sending purpose, the gate blocks exactly when
`decide()` does, and with `decide()`'s first blocking outcome: the same check, tier,
summary, exclusion and evidence (the gate is `decide()`'s loop stopped at the first block).
The gate is asked as the worker asks it, with the decision index's matches, and also
without them.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose, decide
from optout.eligibility.gate import Gate, first_block
from optout.eligibility.model import Outcome
from optout.services import decision_index
from optout.services.eligibility import facts, situation
from tests.eligibility.test_parity import Scenario, scenarios, write
from tests.random_worlds import NOW


def _shown(outcome: Outcome | None) -> object:
    if outcome is None:
        return "allowed"
    return (
        outcome.check,
        outcome.tier,
        outcome.status,
        outcome.summary,
        outcome.exclusion_id,
        dict(outcome.evidence),
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(scenario=scenarios())
def test_R28_send_time_gate_blocks_as_decide_does(db: Connection, scenario: Scenario) -> None:
    with db.begin_nested() as savepoint:
        written = write(db, scenario)
        decision_index.flush(db)
        ws, sequence_id = written.world.ws, written.sequence_id
        now = NOW + timedelta(days=scenario.asked_after_days)
        p = t.people
        everyone = list(db.scalars(sa.select(p.c.id).where(p.c.workspace_id == ws)))
        blocked = 0
        for audience_id in dict.fromkeys([None, written.audience_id]):
            where = situation(
                db,
                workspace_id=ws,
                sequence_id=sequence_id,
                purpose=Purpose.SEND,
                now=now,
                audience_id=audience_id,
            )
            plain = facts(db, workspace_id=ws, person_ids=everyone, sequence_id=sequence_id)
            indexed = facts(
                db,
                workspace_id=ws,
                person_ids=everyone,
                sequence_id=sequence_id,
                matches_for=where,
            )
            gate = Gate(where)
            for pid in everyone:
                expected = decide(plain[pid], where).primary_reason
                blocked += expected is not None
                for form, known in (("index", indexed[pid]), ("no index", plain[pid])):
                    got = gate.first_block(known)
                    assert _shown(got) == _shown(expected), (
                        f"person {pid} ({form}): gate {_shown(got)}, decide {_shown(expected)}"
                    )
                assert _shown(first_block(plain[pid], where)) == _shown(expected)
        note(f"{blocked} of {len(everyone)} people blocked")
        savepoint.rollback()
