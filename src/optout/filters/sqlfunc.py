"""SQL functions whose meaning must match their Python twin on every backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

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
