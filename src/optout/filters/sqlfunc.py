"""SQL functions whose meaning must match their Python twin on every backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement, GenericFunction
from sqlalchemy.types import TypeDecorator, TypeEngine

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_fold(text: str) -> str:
    """Lowercase A-Z only: the case folding that SQLite and PostgreSQL agree on."""
    return text.translate(_ASCII_LOWER)


class ascii_lower(GenericFunction[str]):  # noqa: N801 - SQL function names are lowercase
    """`lower()` restricted to ASCII letters, identical on SQLite and PostgreSQL."""

    type = String()
    inherit_cache = True


@compiles(ascii_lower)
def _ascii_lower_default(element: ascii_lower, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's built-in lower() folds ASCII letters only.
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(ascii_lower, "postgresql")
def _ascii_lower_postgresql(element: ascii_lower, compiler: SQLCompiler, **kw: Any) -> str:
    # Under the "C" collation PostgreSQL's lower() folds ASCII letters only.
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "C")'


# Lists longer than this travel as one parameter (a JSON array on SQLite, an array on
# PostgreSQL): a rule of 20,000 addresses is one bound value, whatever the database's
# limit on parameters per statement.
LONG_LIST = 64


class ValueList(TypeDecorator[list[Any]]):
    """A list of values bound as one parameter: JSON text on SQLite, an array on PostgreSQL."""

    impl = String
    cache_ok = True

    def __init__(self, element: str = "text") -> None:
        super().__init__()
        self.element = element

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            # Imported here: on SQLite the PostgreSQL dialect is never loaded.
            from sqlalchemy.dialects import postgresql

            chosen: TypeEngine[Any] = postgresql.ARRAY(_PG_ELEMENTS[self.element])
        else:
            chosen = String()
        return cast(TypeEngine[Any], dialect.type_descriptor(chosen))

    def process_bind_param(self, value: list[Any] | None, dialect: Any) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(value)


_PG_ELEMENTS: dict[str, TypeEngine[Any]] = {
    "text": String(),
    "integer": BigInteger(),
    "number": Float(),
    "boolean": Boolean(),
}
_PG_CASTS = {
    "text": "TEXT[]",
    "integer": "BIGINT[]",
    "number": "FLOAT8[]",
    "boolean": "BOOLEAN[]",
}


class in_values(FunctionElement[bool]):  # noqa: N801 - SQL-ish construct names are lowercase
    """`column IN (values)` with the values as one parameter (see `ValueList`)."""

    type = Boolean()
    inherit_cache = True
    name = "in_values"
    # A comparison, not a boolean value: SQLite must not get `(... IN ...) = 1` in a WHERE,
    # which no index can answer.
    _is_implicitly_boolean = True


def in_list(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`, as one parameter when the list is long."""
    if len(values) <= LONG_LIST:
        return column.in_(list(values))
    element = (
        "boolean"
        if all(isinstance(v, bool) for v in values)
        else "text"
        if all(isinstance(v, str) for v in values)
        # Ids against an integer column stay integers, so PostgreSQL can use its index.
        else "integer"
        if isinstance(column.type, Integer)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        else "number"
    )
    param = bindparam(None, list(values), type_=ValueList(element))
    return in_values(column, param)


@compiles(in_values)
def _in_values_sqlite(element: in_values, compiler: SQLCompiler, **kw: Any) -> str:
    column, param = list(element.clauses)
    return (
        f"({compiler.process(column, **kw)} IN "
        f"(SELECT value FROM json_each({compiler.process(param, **kw)})))"
    )


@compiles(in_values, "postgresql")
def _in_values_postgresql(element: in_values, compiler: SQLCompiler, **kw: Any) -> str:
    column, param = list(element.clauses)
    array = _PG_CASTS[getattr(param.type, "element", "text")]
    values = compiler.process(param, **kw)
    return f"({compiler.process(column, **kw)} = ANY(CAST({values} AS {array})))"
