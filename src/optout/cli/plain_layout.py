"""Lines and tables as rich lays them out when it writes to no terminal, without loading
rich (it is about a tenth of `optout explain`'s start).

rich's layout, step by step, for what optout prints: a `Console.print` of a text (wrapped at
the width, word by word, a word longer than a line folded), and a table in rich's default
box (each column as wide as its longest line, the widest wrapping columns narrowed in turn
until the table fits, cells padded by one space, a left-justified title). It is used only
where the result is the same to the byte, which `plain_width()` and `one_cell()` decide: no
terminal and nothing telling rich to act as one, optout's own width for that case, UTF-8,
and only characters rich counts as one cell. Anything else is for rich
(`optout.cli.render.console`). tests/cli/test_plain_layout.py holds the two together.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Literal, NamedTuple

PLAIN_WIDTH = 120  # when not writing to a terminal (pipes, tests), do not wrap at 80

# What rich counts as one cell without its Unicode tables (`rich.cells`), with box drawing
# and the signs optout's own words use; no combining mark, no wide character, no tab.
_ONE_CELL_RANGES = ((0x20, 0x7E), (0xA0, 0xAC), (0xAE, 0x2FF), (0x2500, 0x257F))
_ONE_CELL_SIGNS = (
    "\N{CHECK MARK}\N{BALLOT X}\N{EN DASH}\N{EM DASH}\u2018\u2019\u201c\u201d"
    "\N{HORIZONTAL ELLIPSIS}\N{LEFTWARDS ARROW}\N{RIGHTWARDS ARROW}\N{BULLET}"
)
ONE_CELL = frozenset(
    [chr(c) for start, end in _ONE_CELL_RANGES for c in range(start, end + 1)]
) | frozenset(_ONE_CELL_SIGNS)

_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")

Justify = Literal["default", "left", "right"]
Overflow = Literal["fold", "crop", "ellipsis"]

# rich's HEAVY_HEAD box, the default of a rich Table.
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_HEAD_RULE = ("┡", "━", "╇", "┩")
_ROW = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")


class Column(NamedTuple):
    header: str
    justify: Literal["left", "right"] = "left"
    no_wrap: bool = False
    overflow: Overflow = "ellipsis"


def plain_width() -> int | None:
    """The width to lay output out in without rich, or None when rich must do it: stdout
    is a terminal, rich is told to treat it as one (TTY_COMPATIBLE, FORCE_COLOR), the width
    comes from COLUMNS, or the stream is not UTF-8 (rich would draw ASCII boxes)."""
    environ = os.environ
    if any(name in environ for name in ("COLUMNS", "TTY_COMPATIBLE", "FORCE_COLOR")):
        return None
    stream = sys.stdout
    try:
        if stream.isatty():
            return None
    except ValueError:
        return None
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    if not encoding.startswith("utf") or sys.platform == "win32":
        return None
    return PLAIN_WIDTH


def one_cell(texts: Iterable[str]) -> bool:
    """True when every character of `texts` is one rich counts as one cell (or a line break)."""
    return all(ONE_CELL.issuperset(text.replace("\n", "")) for text in texts)


def _divide_line(text: str, width: int, *, fold: bool) -> list[int]:
    """Where rich breaks one line of text into lines of `width` (`rich._wrap.divide_line`)."""
    breaks: list[int] = []
    offset = 0
    position = 0
    found = _WORD.match(text, position)
    while found is not None:
        start, end = found.span()
        word = found.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            if fold:
                pieces = [word[i : i + width] for i in range(0, len(word), width)]
                for index, piece in enumerate(pieces):
                    if start:
                        breaks.append(start)
                    if index == len(pieces) - 1:
                        offset = len(piece)
                    else:
                        start += len(piece)
            else:
                if start:
                    breaks.append(start)
                offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
        found = _WORD.match(text, end)
    return breaks


def _truncate(line: str, width: int, overflow: Overflow, *, pad: bool = False) -> str:
    length = len(line)
    if length > width:
        line = line[: width - 1] + "…" if overflow == "ellipsis" else line[:width]
    if pad and length < width:
        line += " " * (width - length)
    return line


def wrap(text: str, width: int, justify: Justify, overflow: Overflow, no_wrap: bool) -> list[str]:
    """The lines of `text` in `width` cells (`rich.text.Text.wrap`)."""
    lines: list[str] = []
    for line in text.split("\n"):
        if no_wrap:
            pieces = [line]
        else:
            breaks = _divide_line(line, width, fold=overflow == "fold")
            bounds = [0, *breaks, len(line)]
            pieces = [line[a:b] for a, b in pairwise(bounds)]
            for index, piece in enumerate(pieces):
                if len(piece) > width:
                    trailing = _TRAILING_SPACE.search(piece)
                    if trailing is not None:
                        cut = min(len(trailing.group(0)), len(piece) - width)
                        pieces[index] = piece[:-cut]
        if justify == "left":
            pieces = [_truncate(piece, width, overflow, pad=True) for piece in pieces]
        elif justify == "right":
            pieces = [_truncate(piece.rstrip(), width, overflow) for piece in pieces]
            pieces = [" " * (width - len(piece)) + piece for piece in pieces]
        lines.extend(_truncate(piece, width, overflow) for piece in pieces)
    return lines


def printed(text: str, width: int) -> str:
    """`Console.print` of a text: wrapped at the width, each line ended."""
    return "".join(
        line[:width] + "\n" for line in wrap(text, width, "default", "fold", no_wrap=False)
    )


def _measure(text: str, width: int) -> tuple[int, int]:
    """The narrowest and widest a padded cell of `text` can be, at most `width` wide
    (`rich.measure.Measurement.get` of a `Padding` around a `Text`)."""
    if width < 1:
        return 0, 0
    if width - 2 < 1:
        low, high = width, width
    else:
        lines = text.splitlines()
        widest = max((len(line) for line in lines), default=0)
        words = text.split()
        longest = max((len(word) for word in words), default=widest)
        low, high = _normal(longest, widest, width - 2)
        if high < 1:
            low, high = 0, 0
        low, high = min(low + 2, width), min(high + 2, width)
    low, high = _normal(low, high, width)
    if high < 1:
        return 0, 0
    return _normal(low, high, high)


def _normal(low: int, high: int, most: int) -> tuple[int, int]:
    """`Measurement(low, high).normalize().with_maximum(most)`, then normalized again."""
    low = min(max(0, low), high)
    low, high = max(0, low), max(0, max(low, high))
    low, high = min(low, most), min(high, most)
    low = min(max(0, low), high)
    return max(0, low), max(0, max(low, high))


def _column_width(cells: Sequence[str], width: int) -> int:
    if width < 1:
        return 0
    measured = [_measure(cell, width) for cell in cells]
    return min(max(high for _, high in measured), width)


def _reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    """`rich._ratio.ratio_reduce`."""
    ratios = [ratio if most else 0 for ratio, most in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result: list[int] = []
    for ratio, most, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(most, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _collapse(widths: list[int], wrapable: list[bool], most: int) -> list[int]:
    """`rich.table.Table._collapse_widths`: narrow the widest wrapping columns in turn."""
    total = sum(widths)
    excess = total - most
    if any(wrapable):
        while total and excess > 0:
            widest = max(w for w, ok in zip(widths, wrapable, strict=True) if ok)
            second = max(
                w if ok and w != widest else 0 for w, ok in zip(widths, wrapable, strict=True)
            )
            difference = widest - second
            ratios = [
                1 if (w == widest and ok) else 0 for w, ok in zip(widths, wrapable, strict=True)
            ]
            if not any(ratios) or not difference:
                break
            widths = _reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
            total = sum(widths)
            excess = total - most
    return widths


def table(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> str | None:
    """A rich `Table(title=..., title_justify="left")` printed at `width`, or None when a
    column would be too narrow to hold its padding (rich's own corner, left to rich)."""
    if any("[" in text or ":" in text for text in (title, *(c.header for c in columns))):
        return None  # rich would read markup or an emoji code in them
    cells = [[column.header for column in columns], *rows]
    by_column = [[row[index] for row in cells] for index in range(len(columns))]
    most = width - (2 + len(columns) - 1)
    widths = [_column_width(texts, most) or 1 for texts in by_column]
    if sum(widths) > most:
        widths = _collapse(widths, [not column.no_wrap for column in columns], most)
        if sum(widths) > most:
            widths = _reduce(sum(widths) - most, [1] * len(widths), widths, widths)
        widths = [_column_width(texts, w) for texts, w in zip(by_column, widths, strict=True)]
    if any(w < 3 for w in widths):
        return None
    title_lines = wrap(title, sum(widths) + 2 + len(columns) - 1, "left", "fold", no_wrap=False)
    out = [line[:width] for line in title_lines]
    out.append(_rule(_TOP, widths))
    for index, row in enumerate(cells):
        rendered = [
            wrap(text, w - 2, column.justify, column.overflow, column.no_wrap)
            for text, w, column in zip(row, widths, columns, strict=True)
        ]
        height = max(len(lines) for lines in rendered)
        blank_first = index == 0  # the header row aligns to the bottom, the others to the top
        shaped = [
            _shape(lines, w, height, bottom=blank_first)
            for lines, w in zip(rendered, widths, strict=True)
        ]
        left, divider, right = _HEAD if index == 0 else _ROW
        for line_no in range(height):
            out.append(left + divider.join(cell[line_no] for cell in shaped) + right)
        if index == 0:
            out.append(_rule(_HEAD_RULE, widths))
    out.append(_rule(_BOTTOM, widths))
    return "".join(line[:width] + "\n" for line in out)


def _shape(lines: list[str], width: int, height: int, *, bottom: bool) -> list[str]:
    inner = width - 2
    padded = [" " + line[:inner].ljust(inner) + " " for line in lines]
    blank = [" " * width] * (height - len(padded))
    return blank + padded if bottom else padded + blank


def _rule(box: tuple[str, str, str, str], widths: Sequence[int]) -> str:
    left, horizontal, cross, right = box
    return left + cross.join(horizontal * w for w in widths) + right
