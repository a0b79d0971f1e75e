"""Reading an uploaded CSV for the imports (R23, R34): decoding, delimiter, header,
column mapping and per-cell values, before anything touches the database.

File-level problems (not text, no header, an unknown column or field) raise
InvalidInput; a cell that cannot be used becomes a `RowError` with its spreadsheet
row number, so a whole file can be reported at once.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from optout.errors import InvalidInput
from optout.filters.fields import CUSTOM_FIELD_NAME
from optout.mail.windows import zone_name
from optout.normalize import normalize_domain, normalize_email

CUSTOM_PREFIX = "fields."
MAX_CUSTOM_VALUE = 10_000
PROGRESS_EVERY = 1000
YIELD_EVERY = 20  # records read between two chances for other threads to run
# No export we know of comes near this; a wider "header" is a wrong file or an attack.
MAX_COLUMNS = 2_000
TRUTHY = frozenset({"true", "yes", "1", "y"})
FALSY = frozenset({"false", "no", "0", "n"})
_DELIMITERS = (",", ";", "\t")
_SNIFF_RECORDS = 50


@dataclass(frozen=True)
class RowError:
    """One unusable cell: `row` as a spreadsheet shows it (the header is row 1)."""

    row: int
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class CsvFile:
    header: list[str]
    records: list[tuple[int, list[str]]]  # (spreadsheet row, cells); blank rows left out
    name: str | None  # the file's base name, when the stream knows it


def read_csv(source: TextIO | CsvFile) -> CsvFile:
    """The header and the non-blank data rows of `source`, or InvalidInput saying why not.
    A file read already (before a transaction opened) is given back as it is."""
    if isinstance(source, CsvFile):
        return source
    try:
        text = source.read()
    except UnicodeDecodeError:
        raise InvalidInput(_not_utf8(source)) from None
    if not isinstance(text, str):
        raise InvalidInput("the file must be read as text, not bytes")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InvalidInput("the file is empty: expected a header row and data rows")
    if "\x00" in text:
        raise InvalidInput("not a CSV file: it contains NUL bytes (a spreadsheet or binary file?)")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    try:
        header = [cell.strip() for cell in next(reader)]
        check_header(header)
        records = [
            (number, cells)
            for number, cells in enumerate(reader, start=2)
            if any(cell.strip() for cell in cells)
        ]
    except csv.Error as exc:
        raise InvalidInput(f"not a well-formed CSV file: line {reader.line_num}: {exc}") from None
    if not records:
        raise InvalidInput("the file has a header but no data rows")
    name = getattr(source, "name", None)
    base = re.split(r"[\\/]", name)[-1] if isinstance(name, str) and name else None
    return CsvFile(header, records, base)


def check_header(header: Sequence[str]) -> None:
    """A header names at most MAX_COLUMNS columns, each once; InvalidInput says which not.
    Linear in the number of columns, whatever it is."""
    if len(header) > MAX_COLUMNS:
        raise InvalidInput(
            f"the header has {len(header)} columns; an import takes at most {MAX_COLUMNS}"
        )
    if not any(header):
        raise InvalidInput("the first row must be a header naming the columns; it is empty")
    counts = Counter(name for name in header if name)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        shown = ", ".join(map(repr, duplicates[:10]))
        more = f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else ""
        raise InvalidInput(f"the header names a column more than once: {shown}{more}")


def _not_utf8(source: TextIO) -> str:
    """Why a file cannot be read, and where as a spreadsheet shows it: the row, the
    column and the value of the first character that is not UTF-8 text."""
    advice = "save it from your spreadsheet as 'CSV UTF-8' and upload it again"
    buffer = getattr(source, "buffer", None)
    if buffer is None or not buffer.seekable():
        return f"the file is not UTF-8 text: {advice}"
    buffer.seek(0)
    raw = bytes(buffer.read()).removeprefix(b"\xef\xbb\xbf")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
    else:
        return f"the file is not UTF-8 text: {advice}"
    text = raw.decode("cp1252", errors="replace")  # one character per byte: same places
    lines = text.splitlines()
    row = text.count("\n", 0, start) + 1
    line = lines[row - 1] if row <= len(lines) else ""
    delimiter = _delimiter(text)
    cells = next(csv.reader([line], delimiter=delimiter), [])
    before = text[text.rfind("\n", 0, start) + 1 : start]
    index = len(next(csv.reader([before], delimiter=delimiter), [""])) - 1
    header = next(csv.reader(lines[:1], delimiter=delimiter), [])
    column = header[index].strip() if index < len(header) and row > 1 else f"number {index + 1}"
    value = cells[index].strip() if index < len(cells) else ""
    return (
        f"the file is not UTF-8 text: row {row}, column {column!r} holds {value!r}, "
        f"written in another encoding; {advice}"
    )


def _delimiter(text: str) -> str:
    """Comma, semicolon or tab: the one that splits the header into the most columns
    with the following rows agreeing on that count; comma on a tie."""

    def score(delimiter: str) -> tuple[bool, int, int]:
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            sample = [row for _, row in zip(range(_SNIFF_RECORDS), reader, strict=False)]
        except csv.Error:
            return (False, -1, 0)
        width = len(sample[0]) if sample else 0
        if width < 2:
            return (False, 0, 0)
        agreeing = sum(1 for row in sample[1:] if len(row) == width)
        return (True, agreeing, width)

    return max(_DELIMITERS, key=score)  # max keeps the first of equals: comma wins ties


def column_indexes(header: Sequence[str], columns: Iterable[str]) -> dict[str, int]:
    """Where each named column is; exact name first, else a unique case-insensitive match."""
    found: dict[str, int] = {}
    for column in columns:
        if column in header:
            found[column] = header.index(column)
            continue
        folded = [i for i, name in enumerate(header) if name.casefold() == column.casefold()]
        if len(folded) != 1:
            listed = ", ".join(repr(name) for name in header if name)
            raise InvalidInput(f"column {column!r} is not in the file; its columns are: {listed}")
        found[column] = folded[0]
    return found


def extra_cells(number: int, cells: Sequence[str], header: Sequence[str]) -> RowError | None:
    """A row with more non-empty values than the header has columns is misaligned."""
    extra = [cell for cell in cells[len(header) :] if cell.strip()]
    if not extra:
        return None
    return RowError(
        number,
        "",
        ", ".join(extra),
        f"the row has {len(cells)} values but the header names {len(header)} columns",
    )


def cell(cells: Sequence[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def progress_steps(
    records: Sequence[tuple[int, list[str]]], progress: Callable[[int, int], None] | None
) -> Iterator[tuple[int, list[str]]]:
    """The records, calling `progress(done, total)` every PROGRESS_EVERY of them.

    Every few records it also lets the other threads of the process run: reading a large
    file takes seconds of pure Python, and a thread that holds the write lock (an
    unsubscribe) would otherwise wait for the interpreter after each statement."""
    total = len(records)
    for done, record in enumerate(records, start=1):
        yield record
        if done % YIELD_EVERY == 0:
            time.sleep(0)
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)


# Field kinds: how a cell becomes a value. Each returns the value, None for "not given",
# or raises InvalidInput with the reason.


def text_value(limit: int) -> Callable[[str], str | None]:
    def parse(raw: str) -> str | None:
        if not raw:
            return None
        if len(raw) > limit:
            raise InvalidInput(f"longer than {limit} characters ({len(raw)})")
        return raw

    return parse


def email_value(raw: str) -> str | None:
    return normalize_email(raw).address if raw else None


def zone_value(raw: str) -> str | None:
    """An IANA time zone name (`Europe/Berlin`), in any case."""
    return zone_name(raw) if raw else None


def domain_value(raw: str) -> str | None:
    return normalize_domain(raw) if raw else None


def opt_out_value(raw: str) -> bool | None:
    """True opts the address out; a false or empty cell does nothing (R33)."""
    folded = raw.casefold()
    if folded in TRUTHY:
        return True
    if not folded or folded in FALSY:
        return None
    raise InvalidInput("not a yes/no value; use true, yes, 1 or y (false, no, 0, n or empty: no)")


Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Kind:
    """What one import kind accepts: its fields, their parsers, its identity field."""

    name: str
    identity: str
    fields: Mapping[str, Parser]
    requires: Mapping[str, str]  # field -> a field that must be mapped along with it

    def parser(self, field: str) -> Parser:
        if field.startswith(CUSTOM_PREFIX):
            return text_value(MAX_CUSTOM_VALUE)
        return self.fields[field]


def check_mapping(kind: Kind, mapping: Mapping[str, str]) -> None:
    """Every mapped field exists for `kind`, none twice, and the identity is mapped."""
    if not mapping:
        raise InvalidInput(f"map the file's columns to fields, at least one to {kind.identity!r}")
    for column, field in mapping.items():
        if field.startswith(CUSTOM_PREFIX):
            key = field[len(CUSTOM_PREFIX) :]
            if not CUSTOM_FIELD_NAME.match(key):
                raise InvalidInput(
                    f"column {column!r}: custom field name {key!r} must be lowercase letters, "
                    "digits and underscores, starting with a letter"
                )
        elif field not in kind.fields:
            known = ", ".join(kind.fields)
            raise InvalidInput(
                f"column {column!r}: unknown field {field!r} for a {kind.name} import; "
                f"use one of {known}, or fields.<name> for a custom field"
            )
    fields = list(mapping.values())
    twice = sorted(field for field, count in Counter(fields).items() if count > 1)
    if twice:
        raise InvalidInput(f"more than one column is mapped to {', '.join(map(repr, twice))}")
    if kind.identity not in fields:
        raise InvalidInput(
            f"map a column to {kind.identity!r}: a {kind.name} import identifies rows by it"
        )
    for field, needed in kind.requires.items():
        if field in fields and needed not in fields:
            raise InvalidInput(f"{field!r} needs a column mapped to {needed!r} as well")


@dataclass
class Parsed:
    """The rows of a mapped import: one merged record per identity, in file order."""

    rows: int
    records: dict[str, dict[str, Any]]  # identity -> field -> value (None: not given)
    first_row: dict[str, int]  # identity -> the row it first appears on
    columns: dict[str, str]  # field -> the column it comes from
    errors: list[RowError]


def parse_rows(
    kind: Kind,
    data: CsvFile,
    mapping: Mapping[str, str],
    progress: Callable[[int, int], None] | None,
) -> Parsed:
    """Every row read into a record; bad cells and conflicting duplicates become RowErrors.

    The same identity on several rows is one record: values given on more than one of
    them must agree (an empty cell agrees with anything).
    """
    check_mapping(kind, mapping)
    indexes = column_indexes(data.header, mapping)
    plan = [
        (column, field, indexes[column], kind.parser(field)) for column, field in mapping.items()
    ]
    columns = {field: column for column, field in mapping.items()}
    parsed = Parsed(len(data.records), {}, {}, columns, [])
    for number, cells in progress_steps(data.records, progress):
        misaligned = extra_cells(number, cells, data.header)
        if misaligned is not None:
            parsed.errors.append(misaligned)
            continue
        record: dict[str, Any] = {}
        bad = False
        for column, field, index, parse in plan:
            raw = cell(cells, index)
            try:
                record[field] = parse(raw)
            except InvalidInput as exc:
                parsed.errors.append(RowError(number, column, raw, exc.message))
                bad = True
        key = record.get(kind.identity)
        if key is None and not bad:
            column = columns[kind.identity]
            parsed.errors.append(
                RowError(number, column, "", f"empty: every row needs {kind.identity}")
            )
        if bad or key is None:
            continue
        _merge(parsed, kind.identity, key, record, number, cells, indexes)
    return parsed


def _merge(
    parsed: Parsed,
    identity: str,
    key: str,
    record: dict[str, Any],
    number: int,
    cells: Sequence[str],
    indexes: Mapping[str, int],
) -> None:
    earlier = parsed.records.get(key)
    if earlier is None:
        parsed.records[key] = record
        parsed.first_row[key] = number
        return
    conflicts = [
        field
        for field, value in record.items()
        if value is not None and earlier.get(field) is not None and earlier[field] != value
    ]
    for field in conflicts:
        column = parsed.columns[field]
        parsed.errors.append(
            RowError(
                number,
                column,
                cell(cells, indexes[column]),
                f"conflicts with row {parsed.first_row[key]}, which has the same {identity} "
                f"{key} and {field} {earlier[field]!r}",
            )
        )
    if not conflicts:
        for field, value in record.items():
            if value is not None and earlier.get(field) is None:
                earlier[field] = value


def custom_fields(record: Mapping[str, Any]) -> dict[str, str]:
    """The custom fields given in a record, under their bare names."""
    return {
        field[len(CUSTOM_PREFIX) :]: value
        for field, value in record.items()
        if field.startswith(CUSTOM_PREFIX) and value is not None
    }


def split_values(raw: str) -> list[str]:
    """A cell of an exclusion list may hold several values, comma- or semicolon-separated."""
    return [part.strip() for part in re.split(r"[,;\n]", raw) if part.strip()]
