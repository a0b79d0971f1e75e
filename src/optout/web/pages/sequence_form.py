"""The sequence form's data: settings and steps as posted (parallel lists, one entry per
step, in order), the steps editor's buttons (add, move, delete), and what the form shows
next to it (rulesets, audiences, template variables)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.mail import windows
from optout.services.reads import listing
from optout.services.sequences import definitions
from optout.services.sequences.definitions import Step
from optout.services.sequences.edits import Editable, EditedStep
from optout.services.sequences.step_preview import VARIABLES

KINDS = ("email", "wait")


def _number(value: float) -> str:
    return "" if not value else (str(int(value)) if float(value).is_integer() else str(value))


@dataclass(frozen=True)
class StepForm:
    kind: str
    step_id: int | None = None
    subject: str = ""
    body_text: str = ""
    body_html: str = ""
    days: str = ""
    hours: str = ""
    minutes: str = ""
    emails: int = 0  # queued or sent from the stored step (from the database, not the form)

    @classmethod
    def of(cls, step: Step, step_id: int | None = None, emails: int = 0) -> StepForm:
        days, rest = divmod(step.wait_seconds, 86400)
        hours, rest = divmod(rest, 3600)
        return cls(
            kind=step.kind,
            step_id=step_id,
            subject=step.subject,
            body_text=step.body_text,
            body_html=step.body_html,
            days=_number(days),
            hours=_number(hours),
            minutes=_number(rest / 60),
            emails=emails,
        )

    def data(self) -> dict[str, Any]:
        """As `definitions.steps_from_data` reads a step."""
        if self.kind == "wait":
            return {
                "kind": "wait",
                "days": self.days.strip() or 0,
                "hours": self.hours.strip() or 0,
                "minutes": self.minutes.strip() or 0,
            }
        return {
            "kind": self.kind,
            "subject": self.subject,
            "text": self.body_text,
            "html": self.body_html,
        }


@dataclass(frozen=True)
class SequenceForm:
    name: str = ""
    ruleset: str = ""
    audience: str = ""
    from_address: str = ""
    reply_to: str = ""
    steps: list[StepForm] = field(
        default_factory=lambda: [StepForm(kind="email", subject="", body_text="")]
    )
    # The sending window (R38); a form posted without its section leaves it as it is.
    send_days: tuple[str, ...] = tuple(windows.day_names(windows.EVERY_DAY))
    send_start: str = "00:00"
    send_end: str = "24:00"
    business_day_waits: bool = False
    schedule_posted: bool = False
    # A new sequence with an audience enrolls its members by itself unless unticked.
    enroll_automatically: bool = True

    @classmethod
    def of(cls, seq: Editable) -> SequenceForm:
        return cls(
            name=seq.name,
            ruleset=seq.ruleset,
            audience=seq.audience or "",
            from_address=seq.from_address,
            reply_to=seq.reply_to,
            steps=[StepForm.of(s.step, s.id, s.emails) for s in seq.steps],
            send_days=tuple(windows.day_names(seq.schedule.days)),
            send_start=windows.clock_text(seq.schedule.start_minute),
            send_end=windows.clock_text(seq.schedule.end_minute),
            business_day_waits=seq.schedule.business_day_waits,
        )

    def schedule(self) -> windows.Schedule:
        """The sending window as posted (any hour when the section was not posted)."""
        if not self.schedule_posted:
            return windows.ANY_TIME
        if not self.send_days:
            raise InvalidInput("tick at least one day to send on")
        return windows.schedule_from(
            list(self.send_days),
            self.send_start,
            self.send_end,
            business_day_waits=self.business_day_waits,
        )

    def parsed_steps(self) -> list[Step]:
        """The steps (InvalidStep names the first one that is wrong)."""
        return definitions.steps_from_data([step.data() for step in self.steps])

    def edited_steps(self) -> list[EditedStep]:
        return [
            EditedStep(step, form.step_id)
            for step, form in zip(self.parsed_steps(), self.steps, strict=True)
        ]

    def settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ruleset": self.ruleset,
            "audience": self.audience or None,
            "from_address": self.from_address,
            "reply_to": self.reply_to,
        } | ({"schedule": self.schedule()} if self.schedule_posted else {})


def _ints(values: list[str]) -> list[int | None]:
    out: list[int | None] = []
    for value in values:
        try:
            out.append(int(value) if value.strip() else None)
        except ValueError:
            raise InvalidInput(f"step id {value!r} is not a number") from None
    return out


async def posted_sequence(request: Request) -> SequenceForm:
    """The form as posted; each step posts every field (the ones of the other kind empty)."""
    form = await request.form()

    def texts(name: str) -> list[str]:
        return [v if isinstance(v, str) else "" for v in form.getlist(name)]

    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    kinds = texts("step_kind")
    subjects, texts_, htmls = (
        texts("step_subject"),
        texts("step_body_text"),
        texts("step_body_html"),
    )
    days, hours, minutes = texts("step_days"), texts("step_hours"), texts("step_minutes")
    ids = _ints(texts("step_id"))
    columns: list[list[Any]] = [subjects, texts_, htmls, days, hours, minutes, ids]
    if any(len(values) != len(kinds) for values in columns):
        raise InvalidInput("the steps were posted incompletely; reload the page")
    if any(kind not in KINDS for kind in kinds):
        raise InvalidInput("a step is an email or a wait")
    steps = [
        StepForm(
            kind=kind,
            step_id=ids[i],
            subject=subjects[i],
            body_text=texts_[i],
            body_html=htmls[i],
            days=days[i],
            hours=hours[i],
            minutes=minutes[i],
        )
        for i, kind in enumerate(kinds)
    ]
    return SequenceForm(
        name=text("name"),
        ruleset=text("ruleset"),
        audience=text("audience"),
        from_address=text("from_address"),
        reply_to=text("reply_to"),
        steps=steps,
        send_days=tuple(day for day in texts("send_day") if day in DAY_CODES),
        send_start=text("send_start"),
        send_end=text("send_end"),
        business_day_waits=text("business_day_waits") == "on",
        schedule_posted=text("schedule") == "shown",
        enroll_automatically=text("enroll_automatically") == "on",
    )


def with_emails(form: SequenceForm, emails: dict[int, int]) -> SequenceForm:
    """The form with each stored step's email count as the database has it."""
    steps = [replace(s, emails=emails.get(s.step_id, 0) if s.step_id else 0) for s in form.steps]
    return replace(form, steps=steps)


def apply_op(form: SequenceForm, op: str) -> tuple[SequenceForm, str]:
    """One steps-editor button: `add:email`, `add:wait`, `up:N`, `down:N`, `delete:N`
    (N from 0). Answers the new form and the id of the control to focus next."""
    action, _, arg = op.partition(":")
    steps = list(form.steps)
    if action == "add" and arg in KINDS:
        steps.append(StepForm(kind=arg))
        return replace(form, steps=steps), f"step-{len(steps) - 1}-first"
    try:
        index = int(arg)
    except ValueError:
        raise InvalidInput(f"unknown steps editor action {op!r}") from None
    if not 0 <= index < len(steps):
        raise InvalidInput("that step is not in the form any more; reload the page")
    if action == "delete":
        if steps[index].emails:
            raise InvalidInput("a step with emails queued or sent cannot be deleted")
        del steps[index]
        return replace(form, steps=steps), "add-email-step"
    target = index - 1 if action == "up" else index + 1 if action == "down" else -1
    if action not in ("up", "down") or not 0 <= target < len(steps):
        raise InvalidInput(f"unknown steps editor action {op!r}")
    steps[index], steps[target] = steps[target], steps[index]
    return replace(form, steps=steps), f"step-{target}-{action}"


def choices(db: Connection, *, workspace_id: int) -> dict[str, list[str]]:
    """The rulesets and audiences a sequence may use, by name."""
    return {
        "rulesets": [
            r["name"]
            for r in listing.rows(
                db, t.rulesets, workspace_id=workspace_id, limit=1000, offset=0
            ).rows
        ],
        "audiences": [
            r["name"]
            for r in listing.rows(
                db, t.audiences, workspace_id=workspace_id, limit=1000, offset=0
            ).rows
        ],
    }


DAY_CODES = tuple(windows.day_names(windows.EVERY_DAY))


def form_context(form: SequenceForm, **extra: Any) -> dict[str, Any]:
    return {
        "form": form,
        "week": list(zip(DAY_CODES, windows.DAY_NAMES, strict=True)),
        "variables": VARIABLES,
        "error": "",
        "step_error": None,
        "focus": "",
        **extra,
    }
