"""Commands about sequences: rulesets, sequences, enrollment, unenrollment and the
"not enrolled" view (R8-R11, R17, R26, R27, R30)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, NowOption, app, env_of, moment
from optout.cli.render import console, emit_json, plain
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.filters import Level
from optout.filters.operators import Context
from optout.filters.sql import compile_sql, people_scope
from optout.mail import windows
from optout.sending.threads import reply_subject
from optout.services.directory import people
from optout.services.enrollments import automatic_view, enrolling, refresh, refusals
from optout.services.filters import read_filter
from optout.services.send_queue.schedule import schedule_of
from optout.services.sequences import auto_enroll, definitions, edits, rulesets

# Refused people listed by `enroll`, by address; the rest are counted.
REFUSALS_SHOWN = 100

sequence_app = typer.Typer(
    help="Create, show, pause, resume and archive sequences.", no_args_is_help=True
)
ruleset_app = typer.Typer(
    help="Rulesets: exclusions on/off, re-enrollment cooldown, company cap.", no_args_is_help=True
)
app.add_typer(sequence_app, name="sequence")
app.add_typer(ruleset_app, name="ruleset")

SequenceArgument = Annotated[str, typer.Argument(help="The sequence's name.")]


@ruleset_app.command("create")
def ruleset_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The ruleset's name.")],
    exclusions: Annotated[
        bool, typer.Option("--exclusions/--no-exclusions", help="Apply exclusions.")
    ] = True,
    cooldown_days: Annotated[
        int, typer.Option("--cooldown-days", help="Days before someone may re-enter.")
    ] = 0,
    max_per_company: Annotated[
        int | None,
        typer.Option("--max-per-company", help="Active people per company at once."),
    ] = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a ruleset for sequences."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        rulesets.create(
            db,
            workspace_id=ws.id,
            name=name,
            now=moment(now),
            exclusions_enabled=exclusions,
            reenroll_cooldown_days=cooldown_days,
            max_active_per_company=max_per_company,
        )
    if json_output:
        emit_json(
            {
                "ruleset": name,
                "created": True,
                "exclusions_enabled": exclusions,
                "reenroll_cooldown_days": cooldown_days,
                "max_active_per_company": max_per_company,
            }
        )
        return
    console().print(Text.assemble("Created ruleset ", (name, "bold"), "."))


DaysOption = Annotated[
    str | None,
    typer.Option(
        "--days",
        help="Days to send on, e.g. mon-fri or mon,wed,fri (with --hours: default mon-fri).",
    ),
]
HoursOption = Annotated[
    str | None,
    typer.Option(
        "--hours",
        help="Sending hours in each recipient's time zone, e.g. 09:00-17:00 "
        "(with --days: default 09:00-17:00).",
    ),
]
BusinessDaysOption = Annotated[
    bool,
    typer.Option(
        "--business-day-waits/--calendar-day-waits",
        help="Whether waits between steps count only the sending days.",
    ),
]


def _schedule(days: str | None, hours: str | None, business_day_waits: bool) -> windows.Schedule:
    """The schedule the options give; any hour when none is given."""
    if days is None and hours is None and not business_day_waits:
        return windows.ANY_TIME
    start, dash, end = (hours or "09:00-17:00").partition("-")
    if not dash:
        raise InvalidInput(f"--hours takes a start and an end, like 09:00-17:00, not {hours!r}")
    return windows.schedule_from(
        days or "mon-fri", start, end, business_day_waits=business_day_waits
    )


@sequence_app.command("create")
def sequence_create(
    ctx: typer.Context,
    name: SequenceArgument,
    ruleset: Annotated[str, typer.Option("--ruleset", help="Name of the ruleset to use.")],
    from_address: Annotated[
        str, typer.Option("--from", help='Sender, e.g. "Sam Seller <sam@example.com>".')
    ],
    steps_file: Annotated[
        Path,
        typer.Option(
            "--steps",
            help='TOML file with [[steps]] tables: kind = "email" (subject, text, html) or '
            'kind = "wait" (days, hours, minutes). A wait first delays the first email.',
            exists=True,
            dir_okay=False,
        ),
    ],
    audience: Annotated[
        str | None, typer.Option("--audience", help="Audience for automatic enrollment.")
    ] = None,
    reply_to: Annotated[str, typer.Option("--reply-to", help="Reply-To address.")] = "",
    days: DaysOption = None,
    hours: HoursOption = None,
    business_day_waits: BusinessDaysOption = False,
    automatically: Annotated[
        bool | None,
        typer.Option(
            "--enroll-automatically/--no-enroll-automatically",
            help="Enroll the audience's members, and whoever comes to be one, by itself "
            "(default: on with --audience).",
        ),
    ] = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a sequence from a steps file. Without --days or --hours it sends at any hour.
    A follow-up email without a subject is sent as a reply in the first email's thread.
    With --audience it enrolls automatically unless --no-enroll-automatically is given."""
    schedule = _schedule(days, hours, business_day_waits)
    try:
        data = tomllib.loads(steps_file.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{steps_file}: not a TOML file ({exc})") from None
    items = data.get("steps")
    if not isinstance(items, list) or not items:
        raise InvalidInput(f"{steps_file}: needs at least one [[steps]] table")
    on = automatically if automatically is not None else audience is not None
    if on and audience is None:
        raise InvalidInput("--enroll-automatically needs --audience: the people it enrolls")
    env = env_of(ctx)
    at = moment(now)
    with env.workspace() as (db, ws):
        sequence_id = definitions.create(
            db,
            workspace_id=ws.id,
            name=name,
            ruleset=ruleset,
            from_address=from_address,
            reply_to=reply_to,
            audience=audience,
            steps=definitions.steps_from_data(items),
            now=at,
            schedule=schedule,
        )
        if on:
            auto_enroll.switch(
                db, workspace_id=ws.id, sequence=name, on=True, actor=env.actor, now=at
            )
    if json_output:
        emit_json(
            {
                "sequence": name,
                "id": sequence_id,
                "created": True,
                "steps": len(items),
                "enroll_automatically": on,
            }
        )
        return
    console().print(
        Text.assemble(
            "Created sequence ",
            (name, "bold"),
            f" with {len(items)} steps",
            "; it enrolls its audience automatically." if on else ".",
        )
    )


@sequence_app.command("auto-enroll")
def sequence_auto_enroll(
    ctx: typer.Context,
    name: SequenceArgument,
    on: Annotated[
        bool,
        typer.Option(
            "--on/--off",
            help="On: the audience's members, and whoever comes to be one, are enrolled "
            "within seconds if every rule lets them in. Off: nobody more is enrolled by itself.",
        ),
    ],
    starts: Annotated[
        str | None,
        typer.Option("--from", help="When it starts, e.g. 2026-12-31 09:00 (UTC)."),
    ] = None,
    ends: Annotated[
        str | None,
        typer.Option("--until", help="When it stops, e.g. 2027-01-31 18:00 (UTC)."),
    ] = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Turn a sequence's automatic enrollment from its audience on or off."""
    if not on and (starts or ends):
        raise InvalidInput("--from and --until go with --on")
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        found = auto_enroll.switch(
            db,
            workspace_id=ws.id,
            sequence=name,
            on=on,
            actor=env.actor,
            now=moment(now),
            starts=automatic_view.parse_moment(starts, what="--from"),
            ends=automatic_view.parse_moment(ends, what="--until"),
        )
    if json_output:
        emit_json({"sequence": name, **automatic_view.setting_json(found)})
        return
    if on:
        console().print(
            Text.assemble(
                (name, "bold"),
                f" enrolls automatically ({_setting_text(found)}): members of its "
                "audience who pass every check are enrolled by the worker within seconds.",
            )
        )
    else:
        console().print(
            Text.assemble(
                (name, "bold"), " no longer enrolls automatically. Nobody was unenrolled."
            )
        )


def _setting_text(found: auto_enroll.Setting) -> str:
    return automatic_view.Status(
        on=found.on, starts=found.starts, ends=found.ends, enrolled_last_day=0, has_audience=True
    ).words


def _schedule_text(schedule: windows.Schedule) -> str:
    if schedule.any_time:
        return "at any hour"
    return f"{schedule.describe()}, in each recipient's time zone"


def _schedule_json(schedule: windows.Schedule) -> dict[str, object]:
    return {
        "days": windows.day_names(schedule.days),
        "start": windows.clock_text(schedule.start_minute),
        "end": windows.clock_text(schedule.end_minute),
        "business_day_waits": schedule.business_day_waits,
    }


@sequence_app.command("schedule")
def sequence_schedule(
    ctx: typer.Context,
    name: SequenceArgument,
    days: DaysOption = None,
    hours: HoursOption = None,
    business_day_waits: BusinessDaysOption = False,
    any_time: Annotated[
        bool, typer.Option("--any-time", help="Send at any hour of any day.")
    ] = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set the days and hours a sequence sends in. Queued emails the new hours close wait
    for their next opening."""
    if any_time and (days or hours or business_day_waits):
        raise InvalidInput("--any-time cannot be combined with --days, --hours or waits")
    if not any_time and days is None and hours is None:
        raise InvalidInput("give --days and/or --hours, or --any-time")
    schedule = windows.ANY_TIME if any_time else _schedule(days, hours, business_day_waits)
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        sequence_id = definitions.spec_by_name(db, workspace_id=ws.id, name=name).id
        edits.update_settings(
            db,
            workspace_id=ws.id,
            sequence_id=sequence_id,
            changes={"schedule": schedule},
            actor=env.actor,
            now=moment(now),
        )
    if json_output:
        emit_json({"sequence": name, "schedule": _schedule_json(schedule)})
        return
    console().print(Text.assemble((name, "bold"), f" now sends {_schedule_text(schedule)}."))


@sequence_app.command("show")
def sequence_show(
    ctx: typer.Context, name: SequenceArgument, json_output: JsonOption = False
) -> None:
    """Steps, settings, enrollments by status and queued emails of a sequence."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        view = definitions.overview(db, workspace_id=ws.id, name=name)
        counts = enrolling.count_by_status(db, workspace_id=ws.id, sequence_id=view.id)
        schedule = schedule_of(db, sequence_id=view.id)
        auto = automatic_view.status(db, workspace_id=ws.id, sequence_id=view.id, now=moment(None))
    if json_output:
        emit_json(
            {
                **plain(view),
                "enrollments": counts,
                "schedule": _schedule_json(schedule),
                "enroll_automatically": auto.on,
                "enroll_automatically_from": auto.starts,
                "enroll_automatically_until": auto.ends,
                "enrolled_automatically_last_day": auto.enrolled_last_day,
            }
        )
        return
    out = console()
    out.print(
        Text.assemble(
            (view.name, "bold"),
            f"  [{view.status}]  ruleset {view.ruleset!r}",
            f", audience {view.audience!r}" if view.audience else "",
            f", from {', '.join(view.mailboxes) or view.from_address}",
        )
    )
    table = Table("#", "step", "what")
    first = next((step.subject for step in view.steps if step.kind == "email"), "")
    for i, step in enumerate(view.steps, start=1):
        if step.kind == "wait":
            table.add_row(str(i), "wait", _duration(step.wait_seconds))
        elif step.subject.strip():
            table.add_row(str(i), "email", Text(step.subject))
        else:  # a follow-up without a subject of its own answers the first email
            table.add_row(str(i), "email", Text(f"{reply_subject(first)} (in the thread)"))
    out.print(table)
    out.print(f"Sends {_schedule_text(schedule)}.")
    if view.audience:
        out.print(
            f"Enrolls automatically: {auto.words}; "
            f"{auto.enrolled_last_day} enrolled automatically in the last day."
        )
    summary = ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "none"
    out.print(f"Enrollments: {summary}. Queued emails: {view.queued_emails}.")


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{rest // 60} min" if rest >= 60 else "",
    ]
    return " ".join(p for p in parts if p) or f"{seconds} s"


def _set_status(
    ctx: typer.Context, name: str, status: str, verb: str, now: str | None, json_output: bool
) -> None:
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        definitions.set_status(
            db, workspace_id=ws.id, name=name, status=status, actor=env.actor, now=moment(now)
        )
    if json_output:
        emit_json({"sequence": name, "status": status, "unenrolled": 0})
        return
    console().print(Text.assemble((name, "bold"), f" {verb}. Nobody was unenrolled."))


@sequence_app.command("pause")
def sequence_pause(
    ctx: typer.Context,
    name: SequenceArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop sending from a sequence; enrollments stay as they are."""
    verb = "is paused: no email is sent from it until it is resumed"
    _set_status(ctx, name, "paused", verb, now, json_output)


@sequence_app.command("resume")
def sequence_resume(
    ctx: typer.Context,
    name: SequenceArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send from a paused sequence again."""
    _set_status(ctx, name, "active", "is active again", now, json_output)


@sequence_app.command("archive")
def sequence_archive(
    ctx: typer.Context,
    name: SequenceArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Archive a sequence: it sends nothing more and cannot be resumed."""
    _set_status(ctx, name, "archived", "is archived", now, json_output)


@sequence_app.command("refresh")
def sequence_refresh(
    ctx: typer.Context,
    name: SequenceArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Enroll everyone eligible from the sequence's audience; keep who was left out and why."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        done = refresh.refresh(
            db, workspace_id=ws.id, sequence=name, actor=env.actor, now=moment(now)
        )
    if json_output:
        emit_json(done)
        return
    console().print(
        f"{done.members} in the audience: {done.enrolled} enrolled now, {done.skipped} left out "
        f"(see `optout not-enrolled {name}`)."
    )


@app.command("enroll")
def enroll(
    ctx: typer.Context,
    sequence: Annotated[str, typer.Option("--sequence", "-s", help="The sequence to enroll in.")],
    emails: Annotated[
        list[str] | None, typer.Argument(help="Addresses of the people to enroll.")
    ] = None,
    filter_text: Annotated[
        str | None, typer.Option("--filter", help="Enroll everyone matching this people filter.")
    ] = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Enroll people by address or by filter. Every one goes through eligibility: no manual
    path bypasses an exclusion."""
    if not emails and not filter_text:
        raise InvalidInput("name people to enroll (addresses) or give --filter")
    env = env_of(ctx)
    at = moment(now)
    with env.workspace() as (db, ws):
        target = definitions.spec_by_name(db, workspace_id=ws.id, name=sequence)
        if filter_text:
            query, scope = people_scope()
            node = read_filter(filter_text, Level.PEOPLE)
            chosen = query.where(
                t.people.c.workspace_id == ws.id,
                compile_sql(node, scope=scope, ctx=Context(now=at)),
            )
            done = enrolling.enroll(
                db,
                workspace_id=ws.id,
                sequence_id=target.id,
                people=chosen,
                actor=env.actor,
                now=at,
            )
        else:
            ids = [
                i
                for email in emails or []
                for i in people.ids_by_email(db, workspace_id=ws.id, email=email)
            ]
            missing = [
                e for e in emails or [] if not people.ids_by_email(db, workspace_id=ws.id, email=e)
            ]
            if missing:
                raise InvalidInput(f"no person with address {', '.join(missing)}")
            done = enrolling.enroll(
                db, workspace_id=ws.id, sequence_id=target.id, people=ids, actor=env.actor, now=at
            )
        refused, refused_total = refusals.staged(db, limit=REFUSALS_SHOWN)
    if json_output:
        emit_json(
            {
                "requested": done.requested,
                "enrolled": done.enrolled,
                "blocked": done.blocked,
                "refused": [
                    {
                        "email": r.email,
                        "code": r.check,
                        "reason": r.reason,
                        "exclusion": r.exclusion,
                    }
                    for r in refused
                ],
                "refused_total": refused_total,
            }
        )
        return
    out = console()
    out.print(f"Enrolled {done.enrolled} of {done.requested} in {sequence!r}; {done.blocked} not.")
    if refused:
        table = Table("person", "not enrolled because")
        for r in refused:
            table.add_row(Text(r.email), Text(r.reason))
        out.print(table)
        if refused_total > len(refused):
            out.print(f"… and {refused_total - len(refused)} more.")
        out.print(
            f"`optout explain EMAIL --sequence {sequence!r}` shows every check for one person."
        )


@app.command("unenroll")
def unenroll(
    ctx: typer.Context,
    emails: Annotated[list[str] | None, typer.Argument(help="Addresses to unenroll.")] = None,
    sequence: Annotated[
        str | None, typer.Option("--sequence", "-s", help="Only this sequence.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", help="Bulk: every enrollment in this status (in_progress, not_started)."
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the audit log).")
    ] = "unenrolled manually",
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Unenroll people from one sequence, or in bulk by status. Not an opt-out."""
    env = env_of(ctx)
    at = moment(now)
    with env.workspace() as (db, ws):
        sequence_id = (
            definitions.spec_by_name(db, workspace_id=ws.id, name=sequence).id if sequence else None
        )
        if status:
            if emails:
                raise InvalidInput("give addresses or --status, not both")
            with Progress(console=console(stderr=True), transient=True) as bar:
                task = bar.add_task("Unenrolling", total=None)
                removal = enrolling.bulk_unenroll(
                    db,
                    workspace_id=ws.id,
                    statuses=status,
                    sequence_id=sequence_id,
                    actor=env.actor,
                    now=at,
                    reason=reason,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            if not emails or sequence_id is None:
                raise InvalidInput(
                    "name addresses and --sequence, or use --status for bulk unenroll"
                )
            ids = [
                i
                for email in emails
                for i in people.ids_by_email(db, workspace_id=ws.id, email=email)
            ]
            removal = enrolling.unenroll(
                db,
                workspace_id=ws.id,
                sequence_id=sequence_id,
                person_ids=ids,
                actor=env.actor,
                now=at,
                reason=reason,
            )
    if json_output:
        emit_json(removal)
        return
    console().print(
        f"Unenrolled {removal.enrollments_ended}; "
        f"cancelled {removal.emails_cancelled} queued emails."
    )


@app.command("not-enrolled")
def not_enrolled(
    ctx: typer.Context,
    sequence: SequenceArgument,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """Who the last automatic enrollment left out, each with the reason."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        rows = refresh.not_enrolled(db, workspace_id=ws.id, sequence=sequence, limit=limit)
    if json_output:
        emit_json(rows)
        return
    if not rows:
        console().print(
            f"Nobody was left out of {sequence!r} (run `optout sequence refresh {sequence!r}`)."
        )
        return
    table = Table("person", "reason", "checked")
    for row in rows:
        table.add_row(
            Text(f"{row.name} <{row.email}>" if row.name else row.email),
            Text(row.reason),
            row.checked_at.strftime("%Y-%m-%d %H:%M"),
        )
    console().print(table)
