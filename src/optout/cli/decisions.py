"""How an eligibility decision reads on a terminal (R29): a headline saying ALLOWED or
BLOCKED with the primary reason, then every check in R16 order with its evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optout.cli import plain_layout
from optout.cli.plain_layout import Column
from optout.cli.values import plain
from optout.eligibility.model import Outcome, Purpose, Status
from optout.eligibility.precedence import check_label
from optout.evidence_words import condition_lines, evidence_lines
from optout.services.eligibility import Explanation

if TYPE_CHECKING:  # rich is loaded only to write to a terminal (`plain_explanation`)
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

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


# A line of output: its words, each run with the rich style it has on a terminal.
Line = list[tuple[str, str | None]]


def headline_line(explanation: Explanation) -> Line:
    decision = explanation.decision
    if decision.allowed:
        return [("ALLOWED", "bold green"), (f"  {_question(explanation, allowed=True)}", None)]
    line: Line = [("BLOCKED", "bold red"), (f"  {_question(explanation, allowed=False)}", None)]
    primary = decision.primary_reason
    if primary is not None:
        line.append((f": {primary.summary}", None))
        matched = condition_lines(primary.evidence)
        if matched:
            line.append((f" ({'; '.join(matched)})", "dim"))
    return line


def headline(explanation: Explanation) -> Text:
    from rich.text import Text

    text = Text()
    for words, style in headline_line(explanation):
        text.append(words, style)
    return text


def _notes_before(explanation: Explanation) -> list[Line]:
    """The lines between the headline and the table."""
    notes: list[Line] = []
    if explanation.automatic is not None:
        notes.append(
            [
                (
                    f"This sequence enrolls automatically: {explanation.person['email']} "
                    f"{explanation.automatic.words}.",
                    None,
                )
            ]
        )
    others = len(explanation.decision.reasons) - 1
    if others > 0:
        notes.append([(f"… and {others} more blocking check(s) below", "dim")])
    if explanation.duplicates:
        notes.append(
            [
                (
                    f"note: {explanation.duplicates} other record(s) share this address; an "
                    "opt-out or bounce holds for all of them",
                    "dim",
                )
            ]
        )
    notes.extend([(f"note: {hint}", "yellow")] for hint in explanation.company_hints)
    notes.extend(
        [("warning: ", "yellow bold"), (warning, None)] for warning in explanation.warnings
    )
    return notes


def _notes_after(explanation: Explanation) -> list[Line]:
    """The line below the table: the CRM's record of an opt-out that blocks."""
    sent = explanation.crm_writeback
    if sent is not None and any(
        o.blocks and o.check in ("opted_out", "complained") for o in explanation.decision.outcomes
    ):
        answer = f" (the CRM answered: {sent.crm_answer})" if sent.crm_answer else ""
        return [[(f"CRM: {sent.summary}{answer}", "dim")]]
    return []


TABLE_TITLE = "Checks in precedence order"
COLUMNS = (
    Column("tier", justify="right"),
    Column("check"),
    Column("status", no_wrap=True),
    Column("summary", overflow="fold"),
    Column("evidence", overflow="fold"),
)


def _cells(outcome: Outcome) -> list[str]:
    """One row of the table: tier, check, status, summary, evidence."""
    return [
        str(outcome.tier),
        check_label(outcome.check),
        MARKS[outcome.status][0],
        outcome.summary,
        evidence_text(outcome),
    ]


def outcomes_table(explanation: Explanation) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=TABLE_TITLE, title_justify="left")
    for column in COLUMNS:
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=column.no_wrap,
            overflow=column.overflow,
        )
    for outcome in explanation.decision.outcomes:
        tier, check, status, summary, evidence = _cells(outcome)
        table.add_row(
            tier,
            check,
            Text(status, MARKS[outcome.status][1]),
            Text(summary),
            Text(evidence, "dim"),
        )
    return table


def _rich_line(line: Line) -> Text:
    from rich.text import Text

    if len(line) == 1:
        words, style = line[0]
        return Text(words, style or "")
    return Text.assemble(*((words, style) if style else words for words, style in line))


def print_explanation(out: Console, explanation: Explanation) -> None:
    out.print(headline(explanation))
    for line in _notes_before(explanation):
        out.print(_rich_line(line))
    out.print(outcomes_table(explanation))
    for line in _notes_after(explanation):
        out.print(_rich_line(line))


def plain_explanation(explanation: Explanation, width: int) -> str | None:
    """What `print_explanation` writes to a console `width` wide that is no terminal, laid
    out without rich (`optout.cli.plain_layout`), or None where only rich lays it out so."""
    lines = [
        "".join(words for words, _ in line)
        for line in [headline_line(explanation), *_notes_before(explanation)]
    ]
    after = ["".join(words for words, _ in line) for line in _notes_after(explanation)]
    rows = [_cells(outcome) for outcome in explanation.decision.outcomes]
    # rich reads the tier and the check's label as markup (they reach it as strings).
    if any("[" in tier + check or ":" in tier + check for tier, check, *_ in rows):
        return None
    if not plain_layout.one_cell([*lines, *after, *(cell for row in rows for cell in row)]):
        return None
    table = plain_layout.table(TABLE_TITLE, COLUMNS, rows, width)
    if table is None:
        return None
    return "".join(
        [
            *(plain_layout.printed(line, width) for line in lines),
            table,
            *(plain_layout.printed(line, width) for line in after),
        ]
    )


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
