"""How an eligibility decision reads on a terminal (R29): a headline saying ALLOWED or
BLOCKED with the primary reason, then every check in R16 order with its evidence."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from optout.cli.render import plain
from optout.eligibility.model import Outcome, Purpose, Status
from optout.eligibility.precedence import check_label
from optout.evidence_words import condition_lines, evidence_lines
from optout.services.eligibility import Explanation

MARKS: dict[Status, tuple[str, str]] = {
    Status.PASS: ("✓ pass", "green"),
    Status.BLOCK: ("✗ block", "red bold"),
    Status.SKIP: ("\N{EN DASH} skip", "dim"),
}


def evidence_text(outcome: Outcome) -> str:
    """The key evidence of one outcome, in the words of the explain page: matched
    conditions by the fields' labels with the actual values, the company that matched
    (and whether through a link), an exclusion's settings, the rest."""
    return "\n".join(evidence_lines(outcome))


def _question(explanation: Explanation, *, allowed: bool) -> str:
    person = explanation.person["email"]
    may = "may" if allowed else "may not"
    if explanation.decision.purpose is Purpose.SEND:
        return f"{person} {may} be emailed by {explanation.sequence!r} now"
    how = (
        f"from audience {explanation.audience!r}"
        if explanation.audience
        else "as a manual enrollment"
    )
    return f"{person} {may} be enrolled in {explanation.sequence!r} now ({how})"


def headline(explanation: Explanation) -> Text:
    decision = explanation.decision
    text = Text()
    if decision.allowed:
        text.append("ALLOWED", "bold green")
        text.append(f"  {_question(explanation, allowed=True)}")
        return text
    text.append("BLOCKED", "bold red")
    text.append(f"  {_question(explanation, allowed=False)}")
    primary = decision.primary_reason
    if primary is not None:
        text.append(f": {primary.summary}")
        matched = condition_lines(primary.evidence)
        if matched:
            text.append(f" ({'; '.join(matched)})", "dim")
    return text


def outcomes_table(explanation: Explanation) -> Table:
    table = Table(title="Checks in precedence order", title_justify="left")
    table.add_column("tier", justify="right")
    table.add_column("check")
    table.add_column("status", no_wrap=True)
    table.add_column("summary", overflow="fold")
    table.add_column("evidence", overflow="fold")
    for outcome in explanation.decision.outcomes:
        label, style = MARKS[outcome.status]
        table.add_row(
            str(outcome.tier),
            check_label(outcome.check),
            Text(label, style),
            Text(outcome.summary),
            Text(evidence_text(outcome), "dim"),
        )
    return table


def print_explanation(out: Console, explanation: Explanation) -> None:
    out.print(headline(explanation))
    if explanation.automatic is not None:
        out.print(
            Text(
                f"This sequence enrolls automatically: {explanation.person['email']} "
                f"{explanation.automatic.words}."
            )
        )
    others = len(explanation.decision.reasons) - 1
    if others > 0:
        out.print(Text(f"… and {others} more blocking check(s) below", "dim"))
    if explanation.duplicates:
        out.print(
            Text(
                f"note: {explanation.duplicates} other record(s) share this address; an "
                "opt-out or bounce holds for all of them",
                "dim",
            )
        )
    for hint in explanation.company_hints:
        out.print(Text(f"note: {hint}", "yellow"))
    for warning in explanation.warnings:
        out.print(Text.assemble(("warning: ", "yellow bold"), warning))
    out.print(outcomes_table(explanation))
    sent = explanation.crm_writeback
    if sent is not None and any(
        o.blocks and o.check in ("opted_out", "complained") for o in explanation.decision.outcomes
    ):
        answer = f" (the CRM answered: {sent.crm_answer})" if sent.crm_answer else ""
        out.print(Text(f"CRM: {sent.summary}{answer}", "dim"))


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    decision = explanation.decision
    primary = decision.primary_reason
    return {
        "email": explanation.person["email"],
        "person_id": explanation.person["id"],
        "sequence": explanation.sequence,
        "audience": explanation.audience,
        "purpose": decision.purpose.value,
        "allowed": decision.allowed,
        "primary_reason": plain(primary) if primary else None,
        "outcomes": [plain(o) for o in decision.outcomes],
        "duplicates": explanation.duplicates,
        "automatic_enrollment": (
            explanation.automatic.words if explanation.automatic is not None else None
        ),
        "company_hints": list(explanation.company_hints),
        "warnings": list(explanation.warnings),
        "crm_writeback": None
        if explanation.crm_writeback is None
        else {
            **plain(explanation.crm_writeback),
            "summary": explanation.crm_writeback.summary,
        },
    }
