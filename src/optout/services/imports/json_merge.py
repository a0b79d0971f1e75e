"""JSON custom fields in import SQL: merge and containment, one expression per dialect
(SQLite's JSON1 functions, PostgreSQL's jsonb operators), as `filters.sqlfunc` does."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction


class import_json_merge(GenericFunction[Any]):  # noqa: N801 - SQL function names are lowercase
    """`a` with the keys of `b` set to `b`'s values (the file wins for its keys)."""

    type = sa.JSON()
    inherit_cache = True


class import_json_covers(GenericFunction[bool]):  # noqa: N801
    """True when every key of `b` is in `a` with the same value: merging changes nothing."""

    type = sa.Boolean()
    inherit_cache = True


def _args(element: GenericFunction[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


@compiles(import_json_merge)
def _merge_sqlite(element: import_json_merge, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"json_patch({a}, {b})"


@compiles(import_json_merge, "postgresql")
def _merge_postgresql(element: import_json_merge, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"CAST(CAST({a} AS JSONB) || CAST({b} AS JSONB) AS JSON)"


@compiles(import_json_covers)
def _covers_sqlite(element: import_json_covers, compiler: SQLCompiler, **kw: Any) -> str:
    # Compare decoded values, not JSON text: the same string may be escaped differently.
    # Keys are custom field names ([a-z0-9_]), safe inside a JSON path.
    a, b = _args(element, compiler, **kw)
    return (
        f"(NOT EXISTS (SELECT 1 FROM json_each({b}) AS import_kv "
        f"WHERE json_extract({a}, '$.' || import_kv.key) IS NOT import_kv.value))"
    )


@compiles(import_json_covers, "postgresql")
def _covers_postgresql(element: import_json_covers, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"(CAST({a} AS JSONB) @> CAST({b} AS JSONB))"
