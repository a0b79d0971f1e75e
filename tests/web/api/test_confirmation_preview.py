"""A save refused for want of confirmation answers with the preview its guard read: the
impact is read once per request, not again by the route that reports the refusal
(R22)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from optout.services.exclusions import preview as previews
from optout.services.exclusions import saves
from optout.web.api import exclusions as exclusion_routes
from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def test_R22_a_refused_save_answers_with_the_preview_its_guard_read(
    api: Api, committed: Committed, monkeypatch: pytest.MonkeyPatch
) -> None:
    with committed() as world:
        staff = [world.person(f"p{i}@acme.com", company="acme.com") for i in range(3)]
        world.person("x@globex.io", company="globex.io")
        world.enroll(world.sequence(), staff)
        keys = api.keys(world)
    reads: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> previews.Preview:
        reads.append(kwargs["exclusion"].name)
        return previews.preview(*args, **kwargs)

    for module in (saves, exclusion_routes):
        monkeypatch.setattr(module, "preview", counted)
    refused = api.client(keys.member).post(
        "/exclusions",
        json={
            "name": "Acme is a customer",
            "level": "company",
            "filter": "company.domain in (acme.com)",
            "unenroll_existing_on_save": True,
        },
    )

    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "confirmation_required"
    assert error["preview"]["people_matched"] == 3
    assert error["preview"]["enrollments_removed"] == 3
    assert reads == ["Acme is a customer"]
