"""The tour `optout demo` prints: what is in the workspace, what each exclusion matches,
why one person is blocked and another allowed (R29), an audience's exclusions (R30),
who sends the outbound sequence and in which hours (R37, R38), and the commands to try
next."""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text
from sqlalchemy.engine import Connection

from optout.cli.audiences import exclusions_view
from optout.cli.decisions import explanation_json, print_explanation
from optout.cli.lookups import counts
from optout.cli.render import exclusion_json, exclusions_table, preview_json
from optout.demo.build import Story
from optout.demo.setup import WEBINAR
from optout.services import eligibility, fresh_rules
from optout.services.exclusions.preview import Preview, preview
from optout.services.mailboxes.sender_mailboxes import listing, of_sequence
from optout.services.send_queue.schedule import schedule_of
from optout.services.sequences import audiences
from optout.services.sequences.definitions import spec_by_name


def _impacts(db: Connection, story: Story, now: datetime) -> dict[int, Preview]:
    specs = fresh_rules.all_specs(db, workspace_id=story.workspace_id)
    return {s.id: preview(db, workspace_id=story.workspace_id, exclusion=s, now=now) for s in specs}


def summary(db: Connection, story: Story, *, now: datetime) -> dict[str, Any]:
    """The tour as data (for `optout demo --json`)."""
    ws = story.workspace_id
    impacts = _impacts(db, story, now)
    return {
        "workspace": story.slug,
        "counts": counts(db, workspace_id=ws),
        "exclusions": [
            {**exclusion_json(s), "preview": preview_json(impacts[s.id])}
            for s in fresh_rules.all_specs(db, workspace_id=ws)
        ],
        "blocked": explanation_json(
            eligibility.explain(
                db, workspace_id=ws, email=story.blocked, sequence=story.sequence, now=now
            )
        ),
        "allowed": explanation_json(
            eligibility.explain(
                db, workspace_id=ws, email=story.allowed, sequence=story.sequence, now=now
            )
        ),
        "audience_exclusions": [
            vars(a)
            for a in audiences.affecting_exclusions(db, workspace_id=ws, audience=story.audience)
        ],
    }


def _senders(out: Console, db: Connection, story: Story, *, now: datetime) -> None:
    """The sequence's mailboxes with their limits, and its sending hours."""
    ws = story.workspace_id
    sequence_id = spec_by_name(db, workspace_id=ws, name=story.sequence).id
    chosen = set(of_sequence(db, sequence_id=sequence_id))
    for box in listing(db, workspace_id=ws, now=now):
        if box.address not in chosen:
            continue
        limit = f"at most {box.daily_limit} emails a day" if box.daily_limit else "no daily limit"
        out.print(
            Text.assemble(
                (box.sender, "bold"),
                f": {limit} (its day in {box.time_zone}), at least {box.min_gap_seconds} s "
                f"between two emails; {box.sent_today} sent today, {box.queued} waiting",
            )
        )
    schedule = schedule_of(db, sequence_id=sequence_id)
    out.print(
        f"Sending hours: {schedule.describe()}; read in each recipient's time zone (else "
        "their mailbox's). Each person gets every email from the same mailbox, and follow-ups "
        "answer the first email, so they sit in one thread."
    )


def _section(out: Console, title: str) -> None:
    out.print()
    out.print(Rule(Text(title, "bold"), align="left"))


def print_tour(out: Console, db: Connection, story: Story, *, now: datetime) -> None:
    ws = story.workspace_id
    n = counts(db, workspace_id=ws)
    out.print(
        f"{n['people']} people at {n['companies']} companies, {n['opportunities']} deals, "
        f"{n['exclusions']} exclusions, {n['audiences']} audiences, {n['sequences']} sequences, "
        f"{n['enrollments']} enrollments ({n['active_enrollments']} active), "
        f"{n['opt_outs']} opt-outs, {n['complaints']} spam complaint(s), "
        f"{n['events']} audit events."
    )

    _section(out, "1. Exclusions and what they match right now")
    specs = fresh_rules.all_specs(db, workspace_id=ws)
    impacts = _impacts(db, story, now)
    out.print(exclusions_table(specs, matched=impacts))
    for spec in specs:
        for miss in impacts[spec.id].near_misses:
            out.print(
                Text.assemble(
                    ("near miss: ", "yellow bold"),
                    f"{spec.name!r} lists {miss.listed}; {miss.present} is in the data and is "
                    "not matched",
                )
            )

    _section(out, f"2. Why {story.blocked} is kept out of {story.sequence!r}")
    print_explanation(
        out,
        eligibility.explain(
            db, workspace_id=ws, email=story.blocked, sequence=story.sequence, now=now
        ),
    )

    _section(out, f"3. Why {story.allowed} may be enrolled")
    print_explanation(
        out,
        eligibility.explain(
            db, workspace_id=ws, email=story.allowed, sequence=story.sequence, now=now
        ),
    )

    _section(out, f"4. Exclusions as audience {story.audience!r} sees them")
    out.print(
        exclusions_view(
            story.audience,
            audiences.affecting_exclusions(db, workspace_id=ws, audience=story.audience),
        )
    )

    _section(out, f"5. Who sends {story.sequence!r}, and when")
    _senders(out, db, story, now=now)

    _section(out, "Try next")
    seq = shlex.quote(story.sequence)
    for command, why in (
        ("optout mailbox list", "each mailbox's sends today against its limit"),
        (f"optout sequence show {seq}", "its steps, sending hours and the mailboxes it sends from"),
        (f"optout explain {story.cooling_down} --sequence {seq}", "in a re-enrollment cooldown"),
        (f"optout explain {story.colleague} --sequence {seq}", "a colleague replied"),
        (f"optout history {story.colleague}", "what happened to them, in order"),
        (f"optout history {story.opted_out}", "an opt-out: enrollment ended, email cancelled"),
        (f"optout explain {story.complained} --sequence {seq}", "a spam complaint comes first"),
        (
            f"optout explain {story.customer} --sequence {shlex.quote(WEBINAR)} --manual",
            "exclusions off in this ruleset",
        ),
        (f"optout exclusion preview {shlex.quote(story.near_miss_rule)}", "near-miss domains"),
        (
            "optout exclusion preview --level company --filter 'company.domain ends with \".io\"'",
            "before you save a rule",
        ),
        (f"optout audience exclusions {shlex.quote(story.audience)}", "what applies where"),
        (f"optout not-enrolled {seq}", "who the audience enrollment left out, and why"),
        ("optout exclusion list", "every rule with live counts"),
        ("optout --help", "everything else"),
    ):
        out.print(Text.assemble(("  $ ", "dim"), (command, "cyan"), (f"   # {why}", "dim")))
    out.print(
        Text(
            "(`optout` is in the project's virtualenv: .venv/bin/optout, or activate it first)",
            "dim",
        )
    )
