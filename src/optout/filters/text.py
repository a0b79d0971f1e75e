"""The human text syntax of the filter language: `parse` reads it, `to_text` writes it.

    company.domain in (acme.com, globex.io) and not person.title contains any ("sales", hr)

Operator spellings come from the operator table. `not` binds tighter than `and`, which
binds tighter than `or`; chains of the same kind are flattened, across parentheses too,
so `parse` always returns the canonical shape that `to_text` prints back unchanged.
Values stay raw here: `validate` checks types and turns date strings into datetimes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn, cast

from optout.errors import InvalidFilter
from optout.filters.ast import All, AnyOf, Condition, Node, Not, Scalar, Value
from optout.filters.operators import OPERATORS, Arg, Operator
from optout.filters.suggest import nearest, similarity

__all__ = ["parse", "to_text"]

# Each operator's spelling as lowercase tokens, longest first: `contains any` before `contains`.
_SPELLINGS: list[tuple[tuple[str, ...], Operator]] = sorted(
    ((tuple(op.syntax.lower().split()), op) for op in OPERATORS.values()),
    key=lambda pair: -len(pair[0]),
)
_SYMBOLS = sorted(
    {part for parts, _ in _SPELLINGS for part in parts if not part.isalpha()}, key=len, reverse=True
)
_KEYWORDS = frozenset(
    {"and", "or", "not", "true", "false", "days"}
    | {part for parts, _ in _SPELLINGS for part in parts if part.isalpha()}
)

# Words people write for an operator that the syntax spells otherwise, and how sure a
# suggestion from them is (a close misspelling of a real operator wins over it).
_ALIAS_SCORE = 0.9
_OPERATOR_ALIASES = {
    "equals": "=",
    "is": "=",
    "eq": "=",
    "is not": "!=",
    "not equals": "!=",
    "neq": "!=",
}

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<word>[A-Za-z0-9_@+.\-:/%]+)"
    rf"|(?P<symbol>{'|'.join(re.escape(s) for s in _SYMBOLS)})"
    r"|(?P<open>\()|(?P<close>\))|(?P<comma>,)",
    re.DOTALL,
)
_BARE = re.compile(r"[A-Za-z0-9_@+.\-:/%]+")
_NUMBER = re.compile(r"-?[0-9]+(?P<fraction>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)?")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_ESCAPE = re.compile(r"\\([\"'\\])")

_Kind = Literal["string", "word", "symbol", "open", "close", "comma", "end"]


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str  # the decoded value of a string, the source of anything else
    start: int
    end: int

    def keyword(self) -> str | None:
        """The lowercase keyword or symbol this token spells, if any; quoted text never is."""
        return self.text.lower() if self.kind in ("word", "symbol") else None


def parse(text: str) -> Node:
    """The raw AST of a filter written in the text syntax, or InvalidFilter saying where."""
    tokens = _tokenize(text)
    if tokens[0].kind == "end":
        raise InvalidFilter("the filter is empty", where=_where(text, 0))
    return _Parser(text, tokens).filter()


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] in "\"'":
                raise InvalidFilter(
                    f"unterminated string: no closing {text[pos]} before the end",
                    where=_where(text, pos),
                )
            raise InvalidFilter(f"unexpected character {text[pos]!r}", where=_where(text, pos))
        if match.lastgroup == "string":
            value = _ESCAPE.sub(r"\1", match.group()[1:-1])
            tokens.append(_Token("string", value, pos, match.end()))
        elif match.lastgroup != "space":
            tokens.append(_Token(cast(_Kind, match.lastgroup), match.group(), pos, match.end()))
        pos = match.end()
    tokens.append(_Token("end", "", len(text), len(text)))
    return tokens


def _chain(kind: type[All] | type[AnyOf], items: list[Node]) -> Node:
    """One node for `a and b and c`; a same-kind item (a parenthesised chain) is spliced in."""
    flat = tuple(
        part for item in items for part in (item.items if isinstance(item, kind) else [item])
    )
    return flat[0] if len(flat) == 1 else kind(flat)


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"at column {column}" if line == 1 else f"at line {line}, column {column}"


# Each level of 'not' or '(' costs the recursive descent a few Python frames: a limit well
# under the interpreter's keeps a hostile filter an InvalidFilter, not a RecursionError.
# (The tree validator applies its own, smaller, depth limit to what parses.)
MAX_NESTING = 100


class _Parser:
    """Recursive descent over the tokens: or-chains of and-chains of (not) operands."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.nesting = 0

    def filter(self) -> Node:
        node = self.any_of()
        token = self.peek()
        if token.kind == "close":
            where = _where(self.text, token.start)
            raise InvalidFilter("unbalanced parentheses: ')' has no matching '('", where=where)
        if token.kind != "end":
            self.fail("'and', 'or' or the end of the filter", token)
        return node

    def any_of(self) -> Node:
        items = [self.all_of()]
        while self.peek().keyword() == "or":
            self.advance()
            items.append(self.all_of())
        return _chain(AnyOf, items)

    def all_of(self) -> Node:
        items = [self.operand()]
        while self.peek().keyword() == "and":
            self.advance()
            items.append(self.operand())
        return _chain(All, items)

    def operand(self) -> Node:
        token = self.peek()
        if token.keyword() == "not" or token.kind == "open":
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise InvalidFilter(
                    f"nested deeper than {MAX_NESTING} levels of 'not' and parentheses",
                    where=_where(self.text, token.start),
                )
            try:
                return self.nested(token)
            finally:
                self.nesting -= 1
        return self.condition()

    def nested(self, token: _Token) -> Node:
        self.advance()
        if token.kind != "open":
            return Not(self.operand())
        node = self.any_of()
        close = self.peek()
        if close.kind != "close":
            self.fail(f"')' to close the '(' {_where(self.text, token.start)}", close)
        self.advance()
        return node

    def condition(self) -> Condition:
        field = self.peek()
        if field.kind != "word" or field.keyword() in _KEYWORDS or not _FIELD.fullmatch(field.text):
            self.fail("a condition (a field name such as person.email), '(' or 'not'", field)
        self.advance()
        op = self.operator(field)
        after = self.text[field.start : self.tokens[self.pos - 1].end]
        if op.arg is Arg.NONE:
            return Condition(field.text, op.name)
        if op.arg is Arg.LIST:
            return Condition(field.text, op.name, self.values(after))
        if op.arg is Arg.DAYS:
            return Condition(field.text, op.name, self.days(after))
        return Condition(field.text, op.name, self.scalar(f"a value after {after!r}"))

    def operator(self, field: _Token) -> Operator:
        for parts, op in _SPELLINGS:
            ahead = self.tokens[self.pos : self.pos + len(parts)]
            if [token.keyword() for token in ahead] == list(parts):
                self.pos += len(parts)
                return op
        self.fail(f"an operator after {field.text!r}", self.peek(), self.operator_hint())

    def operator_hint(self) -> str:
        """'; did you mean X?' for the operator spelling nearest to the words ahead: the
        best match of the next one, two or three words (a common alias such as 'equals'
        scores just below an exact spelling)."""
        ahead = self.tokens[self.pos : self.pos + 3]
        words = [token.text.lower().replace("_", " ") for token in ahead if token.kind == "word"]
        spellings = {" ".join(parts) for parts, _ in _SPELLINGS}
        scored: list[tuple[float, str]] = []
        for count in range(1, len(words) + 1):
            typed = " ".join(words[:count])
            if typed in _OPERATOR_ALIASES:
                scored.append((_ALIAS_SCORE, _OPERATOR_ALIASES[typed]))
            match = nearest(typed, spellings)
            if match is not None:
                scored.append((similarity(typed, match), match))
        if not scored:
            return ""
        return f"; did you mean {max(scored)[1]!r}?"

    def values(self, after: str) -> tuple[Scalar, ...]:
        if self.peek().kind != "open":
            self.fail(f"a parenthesised list such as (a, b) after {after!r}", self.peek())
        self.advance()
        items = [self.scalar(f"a value in the list after {after!r}")]
        while self.peek().kind == "comma":
            self.advance()
            items.append(self.scalar("a value after ','"))
        if self.peek().kind != "close":
            self.fail("',' or ')' in the list", self.peek())
        self.advance()
        return tuple(items)

    def days(self, after: str) -> int:
        number = self.peek()
        if number.kind != "word" or not re.fullmatch(r"-?[0-9]+", number.text):
            self.fail(f"a whole number of days after {after!r}", number)
        self.advance()
        if self.peek().keyword() != "days":
            self.fail(f"'days' after {number.text!r}", self.peek())
        self.advance()
        return int(number.text)

    def scalar(self, expected: str) -> Scalar:
        token = self.peek()
        if token.kind == "string":
            self.advance()
            return token.text
        keyword = token.keyword()
        if token.kind == "word" and keyword in ("true", "false"):
            self.advance()
            return keyword == "true"
        if token.kind != "word" or keyword in _KEYWORDS:
            hint = " (a keyword: quote it to use it as text)" if token.kind == "word" else ""
            self.fail(expected, token, hint)
        self.advance()
        number = _NUMBER.fullmatch(token.text)
        if number is None:
            return token.text
        is_float = number["fraction"] or number["exponent"]
        return float(token.text) if is_float else int(token.text)

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> None:
        self.pos += 1

    def fail(self, expected: str, found: _Token, hint: str = "") -> NoReturn:
        if found.kind == "end":
            shown = "the end of the filter"
        else:
            source = self.text[found.start : found.end]
            shown = repr(source if len(source) <= 40 else source[:37] + "...")
        raise InvalidFilter(
            f"expected {expected}, found {shown}{hint}", where=_where(self.text, found.start)
        )


# Printing ---------------------------------------------------------------------------------

_OR, _AND, _ATOM = 1, 2, 3  # binding strength: a weaker child is parenthesised


def to_text(node: Node, *, quote_text: bool = False) -> str:
    """The canonical text of a filter; `parse(to_text(node)) == node` for canonical ASTs.
    With `quote_text`, every text value is quoted, even one that could stand bare (the
    form builder writes it so, which reads unambiguously)."""
    return _render(node, quote_text)[0]


def _render(node: Node, quote_text: bool) -> tuple[str, int]:
    if isinstance(node, Condition):
        return _condition(node, quote_text), _ATOM
    if isinstance(node, Not):
        return f"not {_wrapped(node.item, _ATOM, quote_text)}", _ATOM
    kind = "all" if isinstance(node, All) else "any"
    if not node.items:
        raise InvalidFilter(f"'{kind}' needs at least one condition", where=kind)
    if len(node.items) == 1:
        return _render(node.items[0], quote_text)
    strength, joiner = (_AND, " and ") if kind == "all" else (_OR, " or ")
    return joiner.join(_wrapped(item, strength, quote_text) for item in node.items), strength


def _wrapped(node: Node, strength: int, quote_text: bool) -> str:
    text, own = _render(node, quote_text)
    return f"({text})" if own < strength else text


def _condition(cond: Condition, quote_text: bool) -> str:
    where = f"{cond.field} {cond.op}"
    op = OPERATORS.get(cond.op)
    if op is None:
        raise InvalidFilter(f"unknown operator {cond.op!r}", where=where)
    if not _FIELD.fullmatch(cond.field) or cond.field.lower() in _KEYWORDS:
        raise InvalidFilter(f"{cond.field!r} cannot be written as a field name", where=where)
    head = f"{cond.field} {op.syntax}"
    value = cond.value
    if op.arg is Arg.NONE and value is None:
        return head
    if op.arg is Arg.LIST and isinstance(value, tuple) and value:
        return f"{head} ({', '.join(_scalar(v, quote_text, where=where) for v in value)})"
    if op.arg is Arg.DAYS and isinstance(value, int) and not isinstance(value, bool):
        return f"{head} {value} days"
    if op.arg is Arg.ONE and value is not None and not isinstance(value, tuple):
        return f"{head} {_scalar(value, quote_text, where=where)}"
    raise InvalidFilter(f"operator {op.name!r} cannot take the value {value!r}", where=where)


def _scalar(value: Value, quote_text: bool, *, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFilter(f"{value!r} cannot be written as a number", where=where)
        return repr(value)
    if isinstance(value, datetime):
        return _quoted(value.isoformat())
    if not isinstance(value, str):
        raise InvalidFilter(f"a list cannot hold {value!r}", where=where)
    plain = not quote_text and _BARE.fullmatch(value) and value.lower() not in _KEYWORDS
    return value if plain and not _NUMBER.fullmatch(value) else _quoted(value)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
