"""Enough SOQL for the emulator: SELECT fields FROM object [WHERE a AND b ...]
[ORDER BY f [, g]] [LIMIT n], conditions `field op literal` (=, !=, <, <=, >, >=) and
`field IN (literals)`; literals: 'strings' (with \\' escapes), true/false/null, numbers,
dates and datetimes. String comparison is case-insensitive, as in Salesforce."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:\\.|[^'\\])*')
      | (?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))
      | (?P<date>\d{4}-\d\d-\d\d)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


class SoqlError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = != < <= > >= IN
    value: Any


@dataclass(frozen=True)
class Query:
    fields: list[str]
    obj: str
    where: list[Condition]
    order: list[str]
    limit: int | None


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found or found.end() == pos:
            raise SoqlError(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        pos = found.end()
        kind = found.lastgroup or ""
        raw = found.group(kind)
        if kind == "string":
            out.append(("literal", re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind == "datetime":
            out.append(("literal", parse_datetime(raw)))
        elif kind == "date":
            out.append(("literal", date.fromisoformat(raw)))
        elif kind == "number":
            out.append(("literal", float(raw)))
        elif kind == "word" and raw.lower() in ("true", "false", "null"):
            out.append(("literal", {"true": True, "false": False, "null": None}[raw.lower()]))
        else:
            out.append((kind, raw))
    return out


def parse(text: str) -> Query:
    tokens = _tokens(text)
    i = 0

    def word(expected: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != "word":
            raise SoqlError(f"expected {expected or 'a name'}")
        value = str(tokens[i][1])
        if expected and value.upper() != expected:
            raise SoqlError(f"expected {expected}, got {value}")
        i += 1
        return value

    def at(keyword: str) -> bool:
        return i < len(tokens) and tokens[i][0] == "word" and str(tokens[i][1]).upper() == keyword

    word("SELECT")
    fields = [word()]
    while i < len(tokens) and tokens[i] == ("punct", ","):
        i += 1
        fields.append(word())
    word("FROM")
    obj = word()
    where: list[Condition] = []
    if at("WHERE"):
        i += 1
        while True:
            name = word()
            if at("IN"):
                i += 1
                if tokens[i] != ("punct", "("):
                    raise SoqlError("expected ( after IN")
                i += 1
                values = []
                while tokens[i] != ("punct", ")"):
                    if tokens[i][0] != "literal":
                        raise SoqlError("expected a literal in IN (...)")
                    values.append(tokens[i][1])
                    i += 1
                    if tokens[i] == ("punct", ","):
                        i += 1
                i += 1
                where.append(Condition(name, "IN", values))
            else:
                if tokens[i][0] != "op" or tokens[i + 1][0] != "literal":
                    raise SoqlError(f"expected an operator and a literal after {name}")
                where.append(Condition(name, str(tokens[i][1]), tokens[i + 1][1]))
                i += 2
            if at("AND"):
                i += 1
                continue
            break
    order: list[str] = []
    if at("ORDER"):
        i += 1
        word("BY")
        order.append(word())
        while i < len(tokens) and tokens[i] == ("punct", ","):
            i += 1
            order.append(word())
    limit = None
    if at("LIMIT"):
        i += 1
        limit = int(tokens[i][1])
        i += 1
    if i != len(tokens):
        raise SoqlError(f"unexpected {tokens[i][1]!r}")
    return Query(fields, obj, where, order, limit)


def parse_datetime(text: str) -> datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def comparable(value: Any) -> Any:
    """A record value or a literal, in a form both compare in."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, float(value))
    if isinstance(value, datetime):
        return (3, value)
    if isinstance(value, date):
        return (3, datetime(value.year, value.month, value.day))
    text = str(value)
    if re.match(r"^\d{4}-\d\d-\d\dT", text):
        return (3, parse_datetime(text))
    if re.match(r"^\d{4}-\d\d-\d\d$", text):
        return (3, datetime.fromisoformat(text))
    return (4, text.lower())


def holds(record: dict[str, Any], condition: Condition) -> bool:
    have = comparable(record.get(condition.field))
    if condition.op == "IN":
        return any(have == comparable(v) for v in condition.value)
    want = comparable(condition.value)
    if condition.op in ("=", "!="):
        equal = have == want
        return equal if condition.op == "=" else not equal
    if have[0] != want[0]:
        return False
    return {
        "<": have < want,
        "<=": have <= want,
        ">": have > want,
        ">=": have >= want,
    }[condition.op]
