"""`optout explain` (R29): may this person be enrolled in, or emailed by, a sequence now,
and why. A module of its own, so the command imports only what it uses."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from optout.cli.app import EmailArgument, JsonOption, NowOption, app, env_of, moment
from optout.cli.decisions import explanation_json, plain_explanation, print_explanation
from optout.cli.plain_layout import plain_width
from optout.cli.values import emit_json
from optout.eligibility import Purpose
from optout.errors import InvalidInput
from optout.services import eligibility


@app.command()
def explain(
    ctx: typer.Context,
    email: EmailArgument,
    sequence: Annotated[
        str, typer.Option("--sequence", "-s", help="The sequence to ask about (its name).")
    ],
    send: Annotated[
        bool,
        typer.Option("--send", help="Ask whether an enrolled person may be emailed now."),
    ] = False,
    manual: Annotated[
        bool,
        typer.Option(
            "--manual",
            help="Ask about a manual enrollment, not one from the sequence's audience.",
        ),
    ] = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """May this person be enrolled in (or, with --send, emailed by) a sequence now? Why?

    Lists every check in precedence order with its outcome and evidence.
    """
    if send and manual:
        raise InvalidInput("--manual is about enrollment; leave it out with --send")
    env = env_of(ctx)
    at = moment(now)
    with env.workspace() as (db, ws):
        explanation = eligibility.explain(
            db,
            workspace_id=ws.id,
            email=email,
            sequence=sequence,
            now=at,
            purpose=Purpose.SEND if send else Purpose.ENROLL,
            via_audience=False if manual else None,
        )
    if json_output:
        emit_json({**explanation_json(explanation), "at": at})
        return
    width = plain_width()
    written = plain_explanation(explanation, width) if width is not None else None
    if written is not None:  # what rich would write there, without loading it
        sys.stdout.write(written)
        sys.stdout.flush()
        return
    from optout.cli.render import console

    print_explanation(console(), explanation)
