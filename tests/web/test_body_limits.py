"""Request bodies are bounded before any endpoint reads them (R34, DESIGN guarantee 6):
a declared length over the limit is refused unread, a chunked body the moment it
passes the limit, with a 413 that names the limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from optout.web.body_limits import describe, limit_for
from tests.web.conftest import Web


def chunks(total: int, sent: list[int], size: int = 64 * 1024) -> Iterator[bytes]:
    while sum(sent) < total:
        sent.append(size)
        yield b"x" * size


# A Salesforce push is refused before its body is read unless its connection has a
# webhook secret and the request carries it (tests/crm/test_webhooks.py).
@pytest.mark.parametrize("path", ["/u/not-a-token", "/crm/webhooks/hubspot/1"])
def test_R34_a_chunked_body_to_a_public_endpoint_is_cut_off_at_its_limit(
    web: Web, path: str
) -> None:
    sent: list[int] = []
    limit = limit_for(path)

    answer = web.http.post(path, content=chunks(100 * 1024 * 1024, sent))

    assert answer.status_code == 413
    assert answer.json()["error"] == {
        "code": "too_large",
        "message": f"the request body is larger than {describe(limit)}, the limit here",
    }
    assert sum(sent) < limit + 8 * 1024 * 1024  # stopped early, not after 100 MB


def test_R34_a_declared_length_over_the_limit_is_refused_unread(web: Web) -> None:
    answer = web.http.post(
        "/u/not-a-token", content=b"x" * (65 * 1024), headers={"Content-Type": "text/plain"}
    )

    assert answer.status_code == 413
    assert "64 KB" in answer.json()["error"]["message"]


def test_R3_an_unsubscribe_post_within_the_limit_is_read(web: Web) -> None:
    answer = web.http.post("/u/not-a-token", data={"List-Unsubscribe": "One-Click"})

    assert answer.status_code == 404  # read, then refused as an unknown link
