"""An import upload is bounded and its header checked before any transaction opens
(R34, DESIGN guarantee 6): a chunked upload over the limit and a header of tens of
thousands of columns are refused at once, with an error that names the problem."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from optout.services.imports.csv_files import MAX_COLUMNS
from optout.web import body_limits
from tests.factories import World
from tests.web.api.conftest import Api, error_of
from tests.web.test_body_limits import chunks

Committed = Callable[[], AbstractContextManager[World]]


def test_R34_a_chunked_import_over_the_upload_limit_is_refused_naming_it(
    api: Api, committed: Committed, monkeypatch: pytest.MonkeyPatch
) -> None:
    with committed() as world:
        keys = api.keys(world)
    monkeypatch.setattr(body_limits, "LIMITS", (("/api/v1/imports/", 1024 * 1024),))
    sent: list[int] = []

    answer = api.client(keys.member).post(
        "/imports/people",
        params={"map": "Email=email"},
        content=chunks(20 * 1024 * 1024, sent),
        headers={"Content-Type": "text/csv"},
    )

    assert answer.status_code == 413
    assert error_of(answer) == {
        "code": "too_large",
        "message": "the request body is larger than 1 MB, the limit here",
    }
    assert sum(sent) < 10 * 1024 * 1024


def test_R34_a_header_of_40000_columns_is_refused_at_once_naming_the_cap(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
    header = ",".join(["Email", *(f"c{i}" for i in range(40_000))])
    body = f"{header}\na@acme.com{',x' * 40_000}\n".encode()
    started = time.monotonic()

    answer = api.client(keys.member).post(
        "/imports/people",
        params={"map": "Email=email"},
        content=body,
        headers={"Content-Type": "text/csv"},
    )

    assert time.monotonic() - started < 5
    assert answer.status_code == 422
    assert error_of(answer)["message"] == (
        f"the header has 40001 columns; an import takes at most {MAX_COLUMNS}"
    )
