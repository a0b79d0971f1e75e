"""The decision core without a database: precedence (R16) on hand-built facts."""

from __future__ import annotations

from datetime import datetime

from optout.eligibility import (
    AudienceSpec,
    ExclusionSpec,
    Facts,
    Purpose,
    RulesetSpec,
    SequenceSpec,
    Situation,
    Status,
    decide,
)
from optout.eligibility.complaints import (
    ComplaintReport,
    complaint_reason,
    read_complaint_reason,
)
from optout.eligibility.precedence import PRECEDENCE
from optout.filters import Level, Subject, parse, validate

NOW = datetime(2026, 11, 2, 9, 0)


def _rule(id: int, text: str, *, enforced: bool = False, enabled: bool = True) -> ExclusionSpec:
    return ExclusionSpec(
        id, f"rule {id}", Level.PEOPLE, validate(parse(text), Level.PEOPLE), enabled, enforced
    )


def _situation(
    *rules: ExclusionSpec,
    exclusions_enabled: bool = True,
    purpose: Purpose = Purpose.ENROLL,
    audience: AudienceSpec | None = None,
) -> Situation:
    ruleset = RulesetSpec(1, "Default", exclusions_enabled, 0, None)
    return Situation(
        1, SequenceSpec(1, "Outbound", "active", ruleset), rules, purpose, NOW, audience
    )


def _facts(
    title: str = "CTO", *, opted_out: bool = False, bounced: bool = False, complained: bool = False
) -> Facts:
    person = {"id": 7, "email": "ann@acme.com", "email_domain": "acme.com", "title": title}
    suppression = {"since": NOW, "actor": "a", "channel": "manual", "reason": ""}
    complaint = {
        "since": datetime(2026, 10, 30, 14, 5),
        "actor": "feedback loop",
        "channel": "complaint",
        "reason": complaint_reason(ComplaintReport("abuse", "fbl.mail.example", "ARF")),
    }
    return Facts(
        person_id=7,
        email="ann@acme.com",
        subject=Subject(person=person),
        opted_out=suppression if opted_out else None,
        bounced=suppression if bounced else None,
        complained=complaint if complained else None,
    )


def test_R16_precedence_table_reads_top_to_bottom() -> None:
    names = [(rule.tier, rule.check.name) for rule in PRECEDENCE]
    assert names[:6] == [
        (1, "complained"),
        (1, "bounced"),
        (1, "opted_out"),
        (2, "ruleset"),
        (3, "enforced_exclusion"),
        (4, "exclusion"),
    ]
    assert all(rule.check.description for rule in PRECEDENCE)


def test_R16_opt_out_is_absolute_even_with_exclusions_off() -> None:
    decision = decide(_facts(opted_out=True), _situation(exclusions_enabled=False))
    assert not decision.allowed
    assert decision.primary_reason is not None
    assert decision.primary_reason.check == "opted_out"


def test_R16_ruleset_off_skips_every_exclusion() -> None:
    rules = (_rule(1, "person.title = cto", enforced=True), _rule(2, "person.title = cto"))
    decision = decide(_facts(), _situation(*rules, exclusions_enabled=False))
    assert decision.allowed
    skipped = [o for o in decision.outcomes if o.exclusion_id]
    assert [o.status for o in skipped] == [Status.SKIP, Status.SKIP]
    assert all("would match" in o.summary for o in skipped)


def test_R16_audience_switch_off_spares_default_rules_not_enforced_ones() -> None:
    default, enforced = (
        _rule(1, "person.title = cto"),
        _rule(2, "person.title = cto", enforced=True),
    )
    audience = AudienceSpec(5, "Tech", None, switched_off=frozenset({1, 2}))
    decision = decide(_facts(), _situation(default, enforced, audience=audience))
    by_rule = {o.exclusion_id: o.status for o in decision.outcomes if o.exclusion_id}
    assert by_rule == {2: Status.BLOCK, 1: Status.SKIP}


def test_R15_default_rules_do_not_block_sending() -> None:
    decision = decide(_facts(), _situation(_rule(1, "person.title = cto"), purpose=Purpose.SEND))
    assert decision.allowed
    enforced = decide(
        _facts(), _situation(_rule(1, "person.title = cto", enforced=True), purpose=Purpose.SEND)
    )
    assert not enforced.allowed


def test_R29_every_blocking_check_is_reported_not_only_the_first() -> None:
    rules = (_rule(1, "person.title = cto"), _rule(2, 'person.email_domain = "acme.com"'))
    decision = decide(_facts(opted_out=True), _situation(*rules))
    assert [o.check for o in decision.reasons] == ["opted_out", "exclusion", "exclusion"]


def test_R16_R36_complaint_then_bounce_then_opt_out_all_absolute() -> None:
    everything = _facts(opted_out=True, bounced=True, complained=True)
    decision = decide(everything, _situation(exclusions_enabled=False, purpose=Purpose.SEND))
    assert not decision.allowed
    assert [o.check for o in decision.reasons] == ["complained", "bounced", "opted_out"]
    assert not decide(_facts(complained=True), _situation(exclusions_enabled=False)).allowed


def test_R29_R36_explain_gives_the_complaint_its_date_feedback_type_and_reporter() -> None:
    decision = decide(_facts(complained=True), _situation())
    first = decision.outcomes[0]
    assert first.check == "complained"
    assert first.status is Status.BLOCK
    assert first.summary == (
        "ann@acme.com sent a spam complaint on 2026-10-30 (abuse report from fbl.mail.example)"
    )
    assert first.evidence["since"] == "2026-10-30 14:05:00"
    assert first.evidence["feedback_type"] == "abuse"
    assert first.evidence["reporting_domain"] == "fbl.mail.example"
    assert first.evidence["channel"] == "complaint"
    passed = decide(_facts(), _situation()).outcomes[0]
    assert passed.check == "complained"
    assert passed.status is Status.PASS


def test_R36_complaint_reason_reads_back_as_written() -> None:
    for report in (
        ComplaintReport("abuse", "fbl.mail.example", ""),
        ComplaintReport("fraud", "", "said: twice: here"),
        ComplaintReport("other", "x.example", "line one\nline two"),
    ):
        assert read_complaint_reason(complaint_reason(report)) == report
    assert (
        complaint_reason(ComplaintReport("abuse", "x.example", "")) == "abuse report from x.example"
    )
    assert read_complaint_reason("entered by hand") == ComplaintReport(
        "abuse", "", "entered by hand"
    )
