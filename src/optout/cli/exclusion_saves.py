"""Saving an exclusion from the command line: the draft a preview looks at, the
confirmation round-trip of R22, and a caret under the spot a bad filter names."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer
from rich.text import Text
from sqlalchemy.engine import Connection

from optout.cli.app import EXIT_BAD_INPUT, env_of, fail, moment, open_engine
from optout.cli.render import (
    console,
    emit_json,
    exclusion_json,
    preview_json,
    print_preview,
    toggles,
)
from optout.eligibility.model import ExclusionSpec
from optout.errors import ConfirmationRequired, InvalidFilter, InvalidInput
from optout.filters import Level, to_text
from optout.services.exclusions import unenroll
from optout.services.exclusions.preview import Preview, preview
from optout.services.exclusions.saves import Saved
from optout.services.filters import read_filter

_COLUMN = re.compile(r"at column (\d+)")

Save = Callable[[Connection, int, str, datetime], Saved]  # db, workspace id, actor, now
Draft = Callable[[Connection, int], ExclusionSpec]  # db, workspace id


@contextmanager
def pointing_at(filter_text: str | None) -> Iterator[None]:
    """On a bad filter, print the one-line error, then the filter with a caret under the
    column the error names."""
    try:
        yield
    except InvalidFilter as exc:
        found = _COLUMN.search(exc.where)
        if filter_text is None or found is None or "\n" in filter_text:
            raise
        typer.echo(f"error: {exc.message}", err=True)
        typer.echo(f"  {filter_text}", err=True)
        typer.echo(f"  {' ' * (int(found.group(1)) - 1)}^", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def draft(
    base: ExclusionSpec | None,
    *,
    level: Level | None = None,
    filter_text: str | None = None,
    **changes: Any,
) -> ExclusionSpec:
    """An unsaved exclusion: `base` (a saved one, or a new one from `level` and
    `filter_text`) with the given changes; None means unchanged."""
    if base is None:
        if level is None or filter_text is None:
            raise InvalidInput("give a saved exclusion's NAME, or both --level and --filter")
        base = ExclusionSpec(0, "(draft)", level, read_filter(filter_text, level), True, False)
    lvl = level or base.level
    node = read_filter(filter_text if filter_text is not None else base.filter, lvl)
    given = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(base, level=lvl, filter=node, **given)


def save_exclusion(
    ctx: typer.Context,
    *,
    verb: str,
    save: Save,
    draft: Draft,
    json_output: bool,
    now_at: str | None = None,
) -> None:
    """Run one save in one transaction; with unenroll-on-save, the enrollments it ends are
    ended after its commit, in parts, each committed on its own (the exclusion is in force
    from the save's commit). When it needs confirmation, print what it would do and why,
    roll back, and exit 2 asking for --confirm."""
    env = env_of(ctx)
    now = moment(now_at)
    out = console()
    with env.workspace() as (db, ws):
        try:
            saved = save(db, ws.id, env.actor, now)
        except ConfirmationRequired as exc:
            spec = draft(db, ws.id)
            impact = exc.preview
            if not isinstance(impact, Preview):
                impact = preview(db, workspace_id=ws.id, exclusion=spec, now=now)
            if json_output:
                emit_json(
                    {
                        "saved": False,
                        "exclusion": exclusion_json(spec),
                        "preview": preview_json(impact),
                    }
                )
            else:
                out.print(Text(f"Not saved: {spec.name!r} needs confirmation.", "bold red"))
                print_preview(out, impact, spec=spec)
            raise fail(f"{exc.message}; re-run with --confirm to save", EXIT_BAD_INPUT) from None
        workspace_id = ws.id
    if unenroll.sweeps(saved.exclusion):
        engine = open_engine()
        try:
            removal = unenroll.unenroll_in_parts(
                engine, engine.begin, workspace_id=workspace_id, exclusion=saved.exclusion,
                actor=env.actor, now=now,
            )  # fmt: skip
        finally:
            engine.dispose()
        saved = dataclasses.replace(saved, removal=saved.removal + removal)
    if json_output:
        emit_json(
            {
                "saved": True,
                "exclusion": exclusion_json(saved.exclusion),
                "preview": preview_json(saved.preview),
                "removed": {
                    "enrollments_ended": saved.removal.enrollments_ended,
                    "emails_cancelled": saved.removal.emails_cancelled,
                },
            }
        )
        return
    spec = saved.exclusion
    out.print(Text.assemble((f"{verb} {spec.name!r}", "bold"), f" ({spec.level.value} level)"))
    out.print(Text.assemble(("filter: ", "bold"), to_text(spec.filter)))
    out.print(toggles(spec))
    print_preview(out, saved.preview, spec=spec, sample=False)
    removal = saved.removal
    if removal.enrollments_ended or removal.emails_cancelled:
        out.print(
            f"Unenrolled {removal.enrollments_ended} active enrollment(s) and cancelled "
            f"{removal.emails_cancelled} queued email(s)."
        )
