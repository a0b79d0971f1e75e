"""Hints for SQLite's query planner, which has no histograms: it cannot tell that a range
on a date is narrow, and then starts from the wrong table. PostgreSQL estimates these
itself; there the hints are the bare expression."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class rarely(FunctionElement[bool]):  # noqa: N801 - SQL-ish construct names are lowercase
    """A condition few rows meet (the emails due now among every queued one)."""

    type = Boolean()
    inherit_cache = True
    name = "rarely"
    _is_implicitly_boolean = True


@compiles(rarely)
def _rarely_default(element: rarely, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


@compiles(rarely, "sqlite")
def _rarely_sqlite(element: rarely, compiler: SQLCompiler, **kw: Any) -> str:
    return f"likelihood(({compiler.process(element.clauses, **kw)}), 0.001)"


class broadly(FunctionElement[bool]):  # noqa: N801 - SQL-ish construct names are lowercase
    """A condition many rows meet (every queued email), written beside one that narrows
    (an enrollment's emails): SQLite must not start from the index of this one."""

    type = Boolean()
    inherit_cache = True
    name = "broadly"
    _is_implicitly_boolean = True


@compiles(broadly)
def _broadly_default(element: broadly, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


@compiles(broadly, "sqlite")
def _broadly_sqlite(element: broadly, compiler: SQLCompiler, **kw: Any) -> str:
    return f"likelihood(({compiler.process(element.clauses, **kw)}), 0.9)"
