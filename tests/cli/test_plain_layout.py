"""`optout explain` writes its answer without rich when no terminal reads it
(`optout.cli.plain_layout`), and what it writes is what rich writes there, to the byte."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len, get_character_cell_size
from rich.console import Console
from rich.table import Table
from rich.text import Text

from optout.cli import app, render
from optout.cli.plain_layout import ONE_CELL, PLAIN_WIDTH, Column, one_cell, printed, table
from tests.cli.conftest import Cli

rich_console = render.console

# Words of every kind the layout must break alike: short and long (longer than a column,
# folded), with the signs optout's words use, separated by one or more spaces or a line break.
_WORDS = st.text(alphabet="ab✓\N{EN DASH}é…·Z0-'(", min_size=1, max_size=40)
_SPACES = st.sampled_from([" ", " ", " ", "  ", "\n", " \n", "\n\n", "   "])
_TEXTS = st.lists(st.tuples(_WORDS, _SPACES), max_size=14).map(
    lambda pairs: "".join(word + space for word, space in pairs).rstrip(" ")
)
_COLUMNS = st.lists(
    st.builds(
        Column,
        header=st.sampled_from(["tier", "check", "status", "a much longer header", "x"]),
        justify=st.sampled_from(["left", "right"]),
        no_wrap=st.booleans(),
        overflow=st.sampled_from(["fold", "ellipsis", "crop"]),
    ),
    min_size=1,
    max_size=5,
)


def _rich(renderable: Text | Table, width: int) -> str:
    """What rich writes for `renderable` to a console `width` wide that is no terminal, as
    `optout.cli.render.console` makes it there."""
    out = io.StringIO()
    Console(file=out, highlight=False, width=width).print(renderable)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(_TEXTS, st.integers(min_value=8, max_value=130))
def test_R29_a_line_is_wrapped_as_rich_wraps_it(text: str, width: int) -> None:
    assert printed(text, width) == _rich(Text(text), width)


@settings(max_examples=400, deadline=None)
@given(_COLUMNS, st.data(), st.integers(min_value=30, max_value=130))
def test_R29_a_table_is_laid_out_as_rich_lays_it_out(
    columns: list[Column], data: st.DataObject, width: int
) -> None:
    rows = data.draw(st.lists(st.lists(_TEXTS, min_size=len(columns), max_size=len(columns))))
    ours = table("Checks in precedence order", columns, rows, width)
    theirs = Table(title="Checks in precedence order", title_justify="left")
    for column in columns:
        theirs.add_column(
            column.header, justify=column.justify, no_wrap=column.no_wrap, overflow=column.overflow
        )
    for row in rows:
        theirs.add_row(*(Text(cell) for cell in row))
    if ours is not None:  # None: a column too narrow for its padding, left to rich
        assert ours == _rich(theirs, width)


def test_R29_every_character_laid_out_without_rich_is_one_cell_to_rich() -> None:
    for character in ONE_CELL:
        assert cell_len(character) == 1, hex(ord(character))
        assert get_character_cell_size(character) == 1, hex(ord(character))
    assert not one_cell(["漢字"])
    assert not one_cell(["tab\there"])
    assert not one_cell(["e\u0301"])


_DEMO_PEOPLE = (
    "dan.reyes@initrode.net",
    "sofia.martin@northwind.io",
    "grace.kim@pioneerfreight.com",
    "elena.petrov@brightwave.io",
    "daniel.rossi@acme.com",
    "maya.lopez@brightwave.io",
)
_DEMO_SEQUENCES = ("People Teams Intro", "Q4 Outbound", "Webinar Follow-up")


def test_R29_explain_writes_without_a_terminal_what_rich_writes(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every person and sequence of the demo, asked as enrollment, manual enrollment and
    send: the answer laid out without rich is rich's own (FORCE_COLOR="" keeps rich's
    console off the terminal and makes explain hand it the layout)."""
    cli.ok("demo")
    consoles: list[Console] = []

    def counted(*, stderr: bool = False) -> Console:
        consoles.append(made := rich_console(stderr=stderr))
        return made

    monkeypatch.setattr(render, "console", counted)
    no_columns: dict[str, str | None] = {**cli.env(), "COLUMNS": None}
    asks = itertools.product(_DEMO_PEOPLE, _DEMO_SEQUENCES, ([], ["--manual"], ["--send"]))
    for email, sequence, how in asks:
        args = ["explain", email, "--sequence", sequence, "--now", "2026-12-07T12:00:00", *how]
        ours = cli.runner.invoke(app, args, env=no_columns)
        assert not consoles, "explain handed the layout to rich"
        theirs = cli.runner.invoke(app, args, env={**no_columns, "FORCE_COLOR": ""})
        assert len(consoles) == 1, "explain laid out the answer itself under FORCE_COLOR"
        consoles.clear()
        assert ours.exit_code == theirs.exit_code == 0, (ours.output, theirs.output)
        assert ours.stdout == theirs.stdout, (email, sequence, how)
        assert "Checks in precedence order" in ours.stdout
        assert max(len(line) for line in ours.stdout.splitlines()) <= PLAIN_WIDTH


@pytest.mark.parametrize("variable", ["COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"])
def test_R29_explain_leaves_the_layout_to_rich_when_told_of_a_terminal(variable: str) -> None:
    from optout.cli.plain_layout import plain_width

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("COLUMNS", raising=False)
        assert plain_width() in (PLAIN_WIDTH, None)  # None under a terminal
        patch.setenv(variable, "1")
        assert plain_width() is None
