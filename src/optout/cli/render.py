"""Output: rich tables for people, JSON for scripts. Every command and the demo tour
render the same service objects through these functions, so a decision, a preview
or an exclusion looks the same wherever it is shown.

User data is always passed to rich as `Text` (never as markup), so a filter such as
`[x]` prints as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from optout.audit_words import actor_words, event_words
from optout.cli.plain_layout import PLAIN_WIDTH
from optout.cli.values import emit_json as emit_json  # for the commands that print JSON
from optout.cli.values import plain as plain
from optout.eligibility.model import ExclusionSpec
from optout.eligibility.precedence import check_label
from optout.filters import to_text
from optout.filters.confusables import readable

if TYPE_CHECKING:  # a command that shows neither imports neither service
    from optout.services.events import Event
    from optout.services.exclusions.preview import Preview

NOT_APPLICABLE = "\N{EN DASH}"
_ISO_FRACTION = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+$")


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr); made per use, so test runners that
    swap the streams see the output."""
    probe = Console(stderr=stderr, highlight=False)
    if probe.is_terminal or "COLUMNS" in os.environ:
        return probe
    return Console(stderr=stderr, highlight=False, width=PLAIN_WIDTH)


def short(value: Any) -> str:
    """A value as a person reads it in a table cell."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return "(" + ", ".join(short(v) for v in value) + ")" if value else "(nothing)"
    if value == "":
        return '""'
    text = str(value)
    if _ISO_FRACTION.match(text):
        return text.split(".", 1)[0]  # evidence datetimes: seconds are precise enough
    return text


def on_off(flag: bool) -> str:
    return "on" if flag else "off"


# --- exclusions ------------------------------------------------------------------------


def exclusion_json(spec: ExclusionSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "level": spec.level.value,
        "filter": to_text(spec.filter),
        "enabled": spec.enabled,
        "exclude_from_sequences": spec.exclude_from_sequences,
        "unenroll_existing_on_save": spec.unenroll_existing_on_save,
    }


def toggles(spec: ExclusionSpec) -> Text:
    text = Text()
    text.append("enabled" if spec.enabled else "disabled", "green" if spec.enabled else "dim")
    text.append(f" · exclude from sequences {on_off(spec.exclude_from_sequences)}")
    text.append(f" · unenroll on save {on_off(spec.unenroll_existing_on_save)}")
    return text


def exclusions_table(
    specs: Sequence[ExclusionSpec], *, matched: Mapping[int, Preview] | None = None
) -> Table:
    table = Table(title="Exclusions", title_justify="left")
    table.add_column("name", style="bold", ratio=1, min_width=12)
    table.add_column("level", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("excl. from\nsequences", justify="center", no_wrap=True)
    table.add_column("unenroll\non save", justify="center", no_wrap=True)
    if matched is not None:
        table.add_column("people", justify="right", no_wrap=True)
        table.add_column("companies", justify="right", no_wrap=True)
        table.add_column("share", justify="right", no_wrap=True)
    table.add_column("filter", overflow="fold", ratio=2)
    for spec in specs:
        row = [
            Text(spec.name),
            spec.level.value,
            Text("enabled", "green") if spec.enabled else Text("disabled", "dim"),
            on_off(spec.exclude_from_sequences),
            on_off(spec.unenroll_existing_on_save),
        ]
        if matched is not None:
            impact = matched[spec.id]
            companies = (
                str(impact.companies_matched) if spec.level.value == "company" else NOT_APPLICABLE
            )
            row += [str(impact.people_matched), companies, f"{impact.share:.0%}"]
        table.add_row(*row, Text(to_text(spec.filter)))
    return table


# --- preview (R22, R18) ----------------------------------------------------------------


def preview_json(impact: Preview) -> dict[str, Any]:
    return {
        "people_matched": impact.people_matched,
        "people_total": impact.people_total,
        "share": round(impact.share, 4),
        "companies_matched": impact.companies_matched,
        "enrollments_removed": impact.enrollments_removed,
        "emails_cancelled": impact.emails_cancelled,
        "sample": plain(impact.sample),
        "near_misses": [
            {"listed": n.listed, "present": n.present, "kind": n.kind} for n in impact.near_misses
        ],
        "unreached_at_domains": unreached_json(impact),
        "warnings": list(impact.warnings),
        "needs_confirmation": impact.needs_confirmation,
        "confirmation_reasons": list(impact.confirmation_reasons),
    }


def unreached_json(impact: Preview) -> dict[str, Any] | None:
    found = impact.unreached
    if found is None:
        return None
    return {
        "domains": found.domains,
        "count": found.count,
        "without_company": found.without_company,
        "at_another_company": found.at_another_company,
        "sample": plain(found.sample),
    }


def print_preview(
    out: Console, impact: Preview, *, spec: ExclusionSpec, sample: bool = True
) -> None:
    """Counts, a sample, near-miss domains and warnings of one exclusion's impact."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row(
        "people matched",
        f"{impact.people_matched} of {impact.people_total} ({impact.share:.1%})",
    )
    if spec.level.value == "company":
        summary.add_row("companies matched", f"{impact.companies_matched} (linked ones included)")
    if spec.unenroll_existing_on_save and spec.enabled:
        summary.add_row("active enrollments a save removes", str(impact.enrollments_removed))
        summary.add_row("queued emails a save cancels", str(impact.emails_cancelled))
    else:
        summary.add_row(
            "removed on save",
            Text(
                "nobody (unenroll on save is off"
                + ("" if spec.enabled else ", and the exclusion is disabled")
                + "): a save only blocks new enrollments",
                "dim",
            ),
        )
    out.print(summary)
    if sample and impact.sample:
        table = Table(title=f"Sample (first {len(impact.sample)})", title_justify="left")
        for column in ("email", "name", "title", "company"):
            table.add_column(column)
        for row in impact.sample:
            name = " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p)
            table.add_row(
                Text(str(row["email"])),
                Text(name),
                Text(str(row.get("title") or "")),
                Text(str(row.get("company") or "")),
            )
        out.print(table)
    for miss in impact.near_misses:
        if miss.kind == "look_alike":
            out.print(
                Text.assemble(
                    ("look-alike: ", "yellow bold"),
                    f"{readable(miss.present)} ({miss.present}) looks like {miss.listed} but is "
                    "another domain, and is NOT matched",
                )
            )
            continue
        out.print(
            Text.assemble(
                ("near miss: ", "yellow bold"),
                f"{miss.listed} is listed; {miss.present} is in your data and is NOT matched ",
                ("(list it too, or use `company.domain ends with`)", "dim"),
            )
        )
    for warning in impact.warnings:
        out.print(Text.assemble(("warning: ", "yellow bold"), warning))
    if impact.unreached is not None:
        for row in impact.unreached.sample:
            company = row["company"] or "no company"
            out.print(Text(f"  not reached: {row['email']} ({company})"))
    for reason in impact.confirmation_reasons:
        out.print(Text.assemble(("needs --confirm: ", "red bold"), reason))


# --- events (R35) ----------------------------------------------------------------------


def event_json(event: Event, names: Mapping[str, Mapping[int, str]]) -> dict[str, Any]:
    data = plain(event)
    data["sequence"] = names["sequence"].get(event.sequence_id or 0)
    data["exclusion"] = names["exclusion"].get(event.exclusion_id or 0)
    return dict(data)


def _detail_text(detail: Mapping[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if key == "changes" and isinstance(value, Mapping):
            parts += [f"{k}: {short(v[0])} → {short(v[1])}" for k, v in value.items()]
        else:
            parts.append(f"{key}: {short(value)}")
    return "; ".join(parts)


def events_table(events: Iterable[Event], names: Mapping[str, Mapping[int, str]]) -> Table:
    table = Table(title="History (oldest first)", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("event", style="bold")
    table.add_column("by")
    table.add_column("rule")
    table.add_column("sequence")
    table.add_column("detail", overflow="fold")
    for n, event in enumerate(events, start=1):
        rule = check_label(event.rule or "")
        if event.exclusion_id and event.exclusion_id in names["exclusion"]:
            rule = f"{rule} ({names['exclusion'][event.exclusion_id]})".strip()
        table.add_row(
            str(n),
            event.at.strftime("%Y-%m-%d %H:%M:%S"),
            event_words(event.kind),
            Text(actor_words(event.actor)),
            Text(rule),
            Text(names["sequence"].get(event.sequence_id or 0, "")),
            Text(_detail_text(event.detail)),
        )
    return table
