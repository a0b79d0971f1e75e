"""Statements that ask about a short list of ids, built once for each length of the list.

A write's flush asks about one person, one company, a few audiences, in statements it
runs on every write. Built again on every call, such a statement costs more to build and
compile than to run; built once with an expanding parameter, it is rendered into its text
again on every call. Built once per length, with one parameter an id, it only runs. A
list longer than `LONG_LIST` goes as one parameter (`filters.sqlfunc.in_list`) in a
statement built for the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.filters.sqlfunc import LONG_LIST, in_list

# How a statement asks for its ids: the condition on the column that holds them.
In = Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]


class ByLength:
    """The statement `build(ids, db)` for every length of the list of ids, built on first
    use for each dialect (`db` is there for the statements whose words differ by dialect,
    such as `db.inserts.insert_ignoring_duplicates`)."""

    def __init__(self, build: Callable[[In, Connection], Any], *, name: str = "ids") -> None:
        self._build = build
        self._name = name
        self._built: dict[tuple[str, int], Any] = {}

    def execute(self, db: Connection, ids: Iterable[int], **parameters: Any) -> Any:
        """Run the statement for `ids` (sorted, so that the same set is the same call)
        with the other named `parameters`; the result."""
        values = sorted(ids)
        if len(values) > LONG_LIST:
            return db.execute(self._build(lambda column: in_list(column, values), db), parameters)
        key = (db.dialect.name, len(values))
        built = self._built.get(key)
        if built is None:
            names = [f"{self._name}{n}" for n in range(len(values))]
            built = self._built[key] = self._build(
                lambda column: column.in_([sa.bindparam(name, type_=sa.Integer) for name in names]),
                db,
            )
        for n, value in enumerate(values):
            parameters[f"{self._name}{n}"] = value
        return db.execute(built, parameters)
