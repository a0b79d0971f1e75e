"""Jobs run through their own transactions: the data they work on is committed first,
in a workspace of its own that is deleted after the test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine

from optout.db import tables as t
from tests.factories import World


@pytest.fixture
def committed(
    engine: Engine, now: datetime
) -> Iterator[Callable[[], AbstractContextManager[World]]]:
    """`committed()` opens a World whose writes commit when the `with` block ends."""
    made: list[str] = []

    @contextmanager
    def build() -> Iterator[World]:
        slug = f"jobs-{uuid.uuid4().hex[:10]}"
        made.append(slug)
        with engine.begin() as db:
            yield World(db, now, slug=slug)

    yield build
    with engine.begin() as db:
        db.execute(t.workspaces.delete().where(t.workspaces.c.slug.in_(made)))
